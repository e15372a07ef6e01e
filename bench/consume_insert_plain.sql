SET client_min_messages = warning;
DROP TABLE IF EXISTS src;
RESET client_min_messages;
CREATE TABLE src (a int NOT NULL, b int NOT NULL, ts timestamp NOT NULL,
                  direct boolean NOT NULL);
CREATE INDEX ON src (ts);
