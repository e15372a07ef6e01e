/*-------------------------------------------------------------------------
 *
 * listen.c
 *	  session_stream_listen: LISTEN to feed rule channels and print every
 *	  alert as one JSON line on standard output.
 *
 *	  session_stream_listen [--drain] CONNINFO CHANNEL...
 *	  session_stream_listen [--drain] --server NAME CONNINFO
 *							[--server NAME CONNINFO]... CHANNEL...
 *
 * One line per alert:
 *
 *	  {"channel":"feed_c2","pid":4711,"received_at":"2024-05-01T09:00:00.123456Z",
 *	   "via":"notify","alert_id":null,"payload":{"rule":"c2_high",...}}
 *
 * pid is the server process that sent the notification (null for alerts
 * read from the outbox); payload is the notification's JSON, or a JSON
 * string when the payload is not JSON (a plain NOTIFY by someone else).
 *
 * With --server (the shards of a coordinator, say) it follows every
 * server named, one connection each, in the same loop; each line then
 * has "server":NAME after "channel", and its messages on stderr name the
 * server.  Without, lines and messages are as they always were.
 *
 * The loop waits on the connections' sockets (poll, then PQconsumeInput and
 * PQnotifies) and on a pipe the signal handler writes to, so SIGINT and
 * SIGTERM end it cleanly at once; it never sleeps and polls.
 *
 * A notification that names an "alert_id" (delivery 'both', or an alert too
 * large for NOTIFY) has a row in session_stream.alerts: the listener takes
 * that row with take_alert(id) and prints the row's payload, or nothing if
 * another consumer (or its own drain) took it first.  So an alert is
 * printed once even though it is both notified and kept.
 *
 * When a connection is lost the listener reconnects to that server, at
 * once, then after 100 ms, then twice as long after each failure, up to
 * 10 s, while it goes on serving the others.  (Connecting blocks the
 * loop: give a remote server a connect_timeout.)  With --drain, after
 * every (re)connect and LISTEN it empties the outbox of its channels with
 * take_alerts(), so alerts kept while it was away are printed too.  Each
 * batch is deleted in a transaction committed after its lines are written:
 * a crash in between prints some alerts again later, it loses none.
 *
 *-------------------------------------------------------------------------
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	10000
#define DRAIN_BATCH		500
#define MAX_CHANNEL_LEN 63		/* NAMEDATALEN - 1 */
#define JSON_MAX_DEPTH	64

static const char *progname = "session_stream_listen";

/* A server followed: its connection, or when to try connecting again. */
typedef struct Server
{
	const char *name;			/* NULL: the one server of the old usage */
	const char *conninfo;
	PGconn	   *conn;			/* NULL while disconnected */
	int			backoff;		/* ms to wait after the next failure */
	long long	retry_at;		/* ms, monotonic clock */
} Server;

/* The signal handler writes here; the main loop polls it with the socket. */
static int	stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t stopping = 0;

static void
usage(FILE *out)
{
	fprintf(out,
			"%s prints session_stream feed rule alerts as JSON lines.\n\n"
			"Usage:\n"
			"  %s [--drain] CONNINFO CHANNEL...\n"
			"  %s [--drain] --server NAME CONNINFO [--server NAME CONNINFO]... CHANNEL...\n\n"
			"Options:\n"
			"  --drain     on every (re)connect, print and delete the alerts kept in\n"
			"              session_stream.alerts for these channels (take_alerts)\n"
			"  --server NAME CONNINFO\n"
			"              follow this server too (repeat for every shard); each line\n"
			"              then says \"server\":NAME\n"
			"  -h, --help  show this help, then exit\n\n"
			"CONNINFO is a libpq connection string or URI, e.g. \"dbname=shop\".\n"
			"Each CHANNEL is a feed rule channel, e.g. session_stream_alerts.\n"
			"Stops on SIGINT or SIGTERM; reconnects when a server goes away.\n",
			progname, progname, progname);
}

static void
on_signal(int signo)
{
	int			saved = errno;

	(void) signo;

	stopping = 1;
	if (write(stop_pipe[1], "x", 1) < 0)
	{
		/* the pipe is full: a stop is already pending */
	}
	errno = saved;
}

/* ---------------------------------------------------------------------
 * JSON: checking a payload, finding its top-level "alert_id", escaping
 * ---------------------------------------------------------------------
 */

typedef struct JsonScan
{
	const char *p;
	bool		has_alert_id;
	long long	alert_id;
} JsonScan;

static bool scan_value(JsonScan *s, int depth, bool *is_integer);

static void
skip_space(JsonScan *s)
{
	while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')
		s->p++;
}

/* A string; *start and *len give its raw (still escaped) contents. */
static bool
scan_string(JsonScan *s, const char **start, size_t *len)
{
	if (*s->p != '"')
		return false;
	s->p++;
	*start = s->p;
	while (*s->p != '"')
	{
		unsigned char c = (unsigned char) *s->p;

		if (c < 0x20)
			return false;		/* also the terminating NUL */
		if (c == '\\')
		{
			s->p++;
			if (*s->p == 'u')
			{
				int			i;

				for (i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", s->p[i]) || s->p[i] == '\0')
						return false;
				s->p += 4;
			}
			else if (*s->p == '\0' || !strchr("\"\\/bfnrt", *s->p))
				return false;
		}
		s->p++;
	}
	*len = (size_t) (s->p - *start);
	s->p++;
	return true;
}

static bool
scan_digits(JsonScan *s)
{
	const char *begin = s->p;

	while (*s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > begin;
}

static bool
scan_number(JsonScan *s, bool *is_integer)
{
	*is_integer = true;
	if (*s->p == '-')
		s->p++;
	if (*s->p == '0')
		s->p++;
	else if (!scan_digits(s))
		return false;
	if (*s->p == '.')
	{
		s->p++;
		*is_integer = false;
		if (!scan_digits(s))
			return false;
	}
	if (*s->p == 'e' || *s->p == 'E')
	{
		s->p++;
		*is_integer = false;
		if (*s->p == '+' || *s->p == '-')
			s->p++;
		if (!scan_digits(s))
			return false;
	}
	return true;
}

static bool
scan_object(JsonScan *s, int depth)
{
	s->p++;						/* '{' */
	skip_space(s);
	if (*s->p == '}')
	{
		s->p++;
		return true;
	}
	for (;;)
	{
		const char *key;
		size_t		keylen;
		const char *value;
		bool		is_integer;

		skip_space(s);
		if (!scan_string(s, &key, &keylen))
			return false;
		skip_space(s);
		if (*s->p++ != ':')
			return false;
		skip_space(s);
		value = s->p;
		if (!scan_value(s, depth + 1, &is_integer))
			return false;
		if (depth == 0 && is_integer && keylen == 8 &&
			strncmp(key, "alert_id", 8) == 0)
		{
			s->has_alert_id = true;
			s->alert_id = strtoll(value, NULL, 10);
		}
		skip_space(s);
		if (*s->p == '}')
		{
			s->p++;
			return true;
		}
		if (*s->p++ != ',')
			return false;
	}
}

static bool
scan_array(JsonScan *s, int depth)
{
	bool		is_integer;

	s->p++;						/* '[' */
	skip_space(s);
	if (*s->p == ']')
	{
		s->p++;
		return true;
	}
	for (;;)
	{
		skip_space(s);
		if (!scan_value(s, depth + 1, &is_integer))
			return false;
		skip_space(s);
		if (*s->p == ']')
		{
			s->p++;
			return true;
		}
		if (*s->p++ != ',')
			return false;
	}
}

static bool
scan_value(JsonScan *s, int depth, bool *is_integer)
{
	const char *start;
	size_t		len;

	*is_integer = false;
	if (depth > JSON_MAX_DEPTH)
		return false;
	switch (*s->p)
	{
		case '{':
			return scan_object(s, depth);
		case '[':
			return scan_array(s, depth);
		case '"':
			return scan_string(s, &start, &len);
		case 't':
			return strncmp(s->p, "true", 4) == 0 && (s->p += 4);
		case 'f':
			return strncmp(s->p, "false", 5) == 0 && (s->p += 5);
		case 'n':
			return strncmp(s->p, "null", 4) == 0 && (s->p += 4);
		default:
			return scan_number(s, is_integer);
	}
}

/* Is text one JSON value?  Sets s->alert_id from a top-level object. */
static bool
json_check(const char *text, JsonScan *s)
{
	bool		is_integer;

	s->p = text;
	s->has_alert_id = false;
	s->alert_id = 0;
	skip_space(s);
	if (!scan_value(s, 0, &is_integer))
		return false;
	skip_space(s);
	return *s->p == '\0';
}

static void
print_json_string(const char *str)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *) str; *p; p++)
	{
		switch (*p)
		{
			case '"':
				fputs("\\\"", stdout);
				break;
			case '\\':
				fputs("\\\\", stdout);
				break;
			case '\n':
				fputs("\\n", stdout);
				break;
			case '\r':
				fputs("\\r", stdout);
				break;
			case '\t':
				fputs("\\t", stdout);
				break;
			default:
				if (*p < 0x20)
					printf("\\u%04x", *p);
				else
					putchar(*p);
		}
	}
	putchar('"');
}

/* ---------------------------------------------------------------------
 * Output
 * ---------------------------------------------------------------------
 */

/* One line per alert; pid 0 and alert_id < 0 print as null. */
static void
print_alert(const Server *server, const char *channel, int pid,
			const char *via, long long alert_id, const char *payload)
{
	struct timeval now;
	struct tm	tm;
	char		stamp[32];
	JsonScan	scan;

	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	fputs("{\"channel\":", stdout);
	print_json_string(channel);
	if (server->name != NULL)
	{
		fputs(",\"server\":", stdout);
		print_json_string(server->name);
	}
	if (pid > 0)
		printf(",\"pid\":%d", pid);
	else
		fputs(",\"pid\":null", stdout);
	printf(",\"received_at\":\"%s.%06ldZ\",\"via\":\"%s\"", stamp,
		   (long) now.tv_usec, via);
	if (alert_id >= 0)
		printf(",\"alert_id\":%lld", alert_id);
	else
		fputs(",\"alert_id\":null", stdout);
	fputs(",\"payload\":", stdout);
	if (json_check(payload, &scan))
		fputs(payload, stdout);
	else
		print_json_string(payload);
	fputs("}\n", stdout);
	fflush(stdout);
}

#ifdef __GNUC__
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static void say(const Server *server, const char *fmt,...) PRINTF_LIKE(2, 3);
static void bad_usage(const char *fmt, const char *arg) PRINTF_LIKE(1, 0);

/*
 * A message on stderr: "session_stream_listen: ", then 'server "NAME": '
 * when servers are named, then the rest.
 */
static void
say(const Server *server, const char *fmt,...)
{
	va_list		args;

	if (server->name != NULL)
		fprintf(stderr, "%s: server \"%s\": ", progname, server->name);
	else
		fprintf(stderr, "%s: ", progname);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
}

/* ---------------------------------------------------------------------
 * Talking to a server
 * ---------------------------------------------------------------------
 */

static bool
command_ok(const Server *server, const char *sql)
{
	PGresult   *res = PQexec(server->conn, sql);
	bool		ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		say(server, "%s failed: %s", sql, PQerrorMessage(server->conn));
	PQclear(res);
	return ok;
}

/*
 * Take the outbox row of a notification that named an alert_id and print
 * it.  Nothing is printed if the row is gone: it was delivered already.
 */
static bool
take_notified_alert(const Server *server, const char *channel, int pid,
					long long alert_id)
{
	char		id[32];
	const char *params[1];
	PGresult   *res;
	bool		ok;

	snprintf(id, sizeof(id), "%lld", alert_id);
	params[0] = id;
	if (!command_ok(server, "BEGIN"))
		return false;
	res = PQexecParams(server->conn,
					   "SELECT payload::text FROM session_stream.take_alert($1::bigint)",
					   1, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		say(server, "could not take alert %lld: %s", alert_id,
			PQerrorMessage(server->conn));
	else if (PQntuples(res) == 1)
		print_alert(server, channel, pid, "notify", alert_id, PQgetvalue(res, 0, 0));
	PQclear(res);
	return command_ok(server, ok ? "COMMIT" : "ROLLBACK") && ok;
}

/* Print and delete every kept alert of one channel, a batch at a time. */
static bool
drain_channel(const Server *server, const char *channel, long *count)
{
	char		batch[16];
	const char *params[2];

	snprintf(batch, sizeof(batch), "%d", DRAIN_BATCH);
	params[0] = batch;
	params[1] = channel;
	for (;;)
	{
		PGresult   *res;
		int			rows;
		int			i;

		if (stopping)
			return true;
		if (!command_ok(server, "BEGIN"))
			return false;
		res = PQexecParams(server->conn,
						   "SELECT alert_id, payload::text "
						   "FROM session_stream.take_alerts($1::integer, $2::text)",
						   2, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			say(server, "could not drain channel \"%s\": %s", channel,
				PQerrorMessage(server->conn));
			PQclear(res);
			(void) command_ok(server, "ROLLBACK");
			return false;
		}
		rows = PQntuples(res);
		for (i = 0; i < rows; i++)
			print_alert(server, channel, 0, "outbox",
						strtoll(PQgetvalue(res, i, 0), NULL, 10),
						PQgetvalue(res, i, 1));
		PQclear(res);
		if (!command_ok(server, "COMMIT"))
			return false;
		*count += rows;
		if (rows < DRAIN_BATCH)
			return true;
	}
}

static void
handle_notifications(const Server *server)
{
	PGnotify   *n;

	while ((n = PQnotifies(server->conn)) != NULL)
	{
		JsonScan	scan;

		if (json_check(n->extra, &scan) && scan.has_alert_id)
			(void) take_notified_alert(server, n->relname, n->be_pid,
									   scan.alert_id);
		else
			print_alert(server, n->relname, n->be_pid, "notify", -1, n->extra);
		PQfreemem(n);
	}
}

/* Connect, LISTEN, drain; false (after a message) if any of it failed. */
static bool
connect_and_listen(Server *server, char **channels, int nchannels, bool drain)
{
	const char *keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {server->conninfo, progname, NULL};
	long		drained = 0;
	int			i;

	server->conn = PQconnectdbParams(keywords, values, 1);
	if (PQstatus(server->conn) != CONNECTION_OK)
	{
		say(server, "could not connect: %s", PQerrorMessage(server->conn));
		goto fail;
	}
	for (i = 0; i < nchannels; i++)
	{
		char	   *ident = PQescapeIdentifier(server->conn, channels[i],
											   strlen(channels[i]));
		char	   *sql;
		bool		ok;

		if (ident == NULL)
		{
			say(server, "%s", PQerrorMessage(server->conn));
			goto fail;
		}
		sql = malloc(strlen(ident) + 8);
		if (sql == NULL)
		{
			fprintf(stderr, "%s: out of memory\n", progname);
			exit(1);
		}
		sprintf(sql, "LISTEN %s", ident);
		ok = command_ok(server, sql);
		free(sql);
		PQfreemem(ident);
		if (!ok)
			goto fail;
	}
	/* LISTEN first, then drain: an alert committed in between is seen twice
	 * at worst, and take_alert() makes the second sighting print nothing. */
	for (i = 0; drain && i < nchannels; i++)
	{
		if (!drain_channel(server, channels[i], &drained))
			goto fail;
	}
	if (drain)
		fprintf(stderr, "%s: listening on %d channel(s)%s%s%s, drained %ld alert(s)\n",
				progname, nchannels,
				server->name ? " of server \"" : "", server->name ? server->name : "",
				server->name ? "\"" : "", drained);
	else
		fprintf(stderr, "%s: listening on %d channel(s)%s%s%s\n", progname, nchannels,
				server->name ? " of server \"" : "", server->name ? server->name : "",
				server->name ? "\"" : "");
	return true;

fail:
	PQfinish(server->conn);
	server->conn = NULL;
	return false;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
disconnect(Server *server)
{
	PQfinish(server->conn);
	server->conn = NULL;
	server->retry_at = now_ms();	/* reconnect at once, as after a loss */
}

/*
 * Serve every server until told to stop: (re)connect those due, print
 * what the connected ones sent, then wait on their sockets, the stop pipe
 * and the next reconnect time.
 */
static void
serve(Server *servers, int nservers, char **channels, int nchannels, bool drain)
{
	struct pollfd *fds = calloc(nservers + 1, sizeof(struct pollfd));
	int		   *polled = calloc(nservers + 1, sizeof(int));
	int			nfds = 0;

	if (fds == NULL || polled == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		exit(1);
	}
	while (!stopping)
	{
		long long	now = now_ms();
		long long	next_retry = -1;
		int			timeout;
		int			i;

		nfds = 1;
		for (i = 0; i < nservers && !stopping; i++)
		{
			Server	   *server = &servers[i];

			if (server->conn == NULL && now >= server->retry_at)
			{
				if (connect_and_listen(server, channels, nchannels, drain))
					server->backoff = BACKOFF_MIN_MS;
				else if (!stopping)
				{
					say(server, "retrying in %d ms\n", server->backoff);
					server->retry_at = now_ms() + server->backoff;
					server->backoff = server->backoff * 2 > BACKOFF_MAX_MS ?
						BACKOFF_MAX_MS : server->backoff * 2;
				}
			}
			if (server->conn != NULL)
			{
				handle_notifications(server);
				if (PQstatus(server->conn) != CONNECTION_OK)
					disconnect(server);
			}
			if (server->conn == NULL)
			{
				if (next_retry < 0 || server->retry_at < next_retry)
					next_retry = server->retry_at;
				continue;
			}
			fds[nfds].fd = PQsocket(server->conn);
			fds[nfds].events = POLLIN;
			fds[nfds].revents = 0;
			polled[nfds++] = i;
		}
		if (stopping)
			break;

		fds[0].fd = stop_pipe[0];
		fds[0].events = POLLIN;
		fds[0].revents = 0;
		now = now_ms();
		timeout = next_retry < 0 ? -1 :
			next_retry <= now ? 0 : (int) (next_retry - now);
		if (poll(fds, nfds, timeout) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("poll");
			break;
		}
		if (fds[0].revents != 0)
			break;
		for (i = 1; i < nfds; i++)
		{
			Server	   *server = &servers[polled[i]];

			if (fds[i].revents != 0 && !PQconsumeInput(server->conn))
			{
				say(server, "connection lost: %s", PQerrorMessage(server->conn));
				disconnect(server);
			}
		}
	}
	for (nfds = 0; nfds < nservers; nfds++)
		if (servers[nfds].conn != NULL)
			PQfinish(servers[nfds].conn);
	free(fds);
	free(polled);
}

/* Is conninfo a connection string libpq accepts?  Else usage, exit 2. */
static void
check_conninfo(const char *conninfo)
{
	char	   *errmsg = NULL;
	PQconninfoOption *options = PQconninfoParse(conninfo, &errmsg);

	if (options == NULL)
	{
		fprintf(stderr, "%s: invalid connection string \"%s\": %s\n", progname,
				conninfo, errmsg ? errmsg : "out of memory");
		usage(stderr);
		exit(2);
	}
	PQconninfoFree(options);
}

static void
bad_usage(const char *message, const char *arg)
{
	fprintf(stderr, "%s: ", progname);
	fprintf(stderr, message, arg);
	fputs("\n\n", stderr);
	usage(stderr);
	exit(2);
}

int
main(int argc, char **argv)
{
	bool		drain = false;
	Server	   *servers;
	int			nservers = 0;
	char	  **channels;
	int			nchannels;
	struct sigaction sa;
	int			i;

	servers = calloc(argc, sizeof(Server));
	if (servers == NULL)
	{
		fprintf(stderr, "%s: out of memory\n", progname);
		return 1;
	}
	for (i = 1; i < argc && argv[i][0] == '-'; i++)
	{
		if (strcmp(argv[i], "--drain") == 0)
			drain = true;
		else if (strcmp(argv[i], "--server") == 0)
		{
			int			j;

			if (i + 2 >= argc)
				bad_usage("--server needs a NAME and a CONNINFO%s", "");
			if (argv[i + 1][0] == '\0')
				bad_usage("invalid server name \"%s\"", argv[i + 1]);
			for (j = 0; j < nservers; j++)
				if (strcmp(servers[j].name, argv[i + 1]) == 0)
					bad_usage("server \"%s\" is named twice", argv[i + 1]);
			servers[nservers].name = argv[i + 1];
			servers[nservers++].conninfo = argv[i + 2];
			i += 2;
		}
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
		{
			usage(stdout);
			return 0;
		}
		else if (strcmp(argv[i], "--") == 0)
		{
			i++;
			break;
		}
		else
		{
			fprintf(stderr, "%s: unknown option \"%s\"\n\n", progname, argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (nservers == 0)
	{
		/* the old usage: one server, CONNINFO first, no name */
		if (argc - i < 2)
			bad_usage("a connection string and at least one channel are required%s", "");
		servers[nservers++].conninfo = argv[i++];
	}
	else if (argc - i < 1)
		bad_usage("at least one channel is required%s", "");
	channels = &argv[i];
	nchannels = argc - i;

	for (i = 0; i < nservers; i++)
	{
		check_conninfo(servers[i].conninfo);
		servers[i].backoff = BACKOFF_MIN_MS;
	}
	for (i = 0; i < nchannels; i++)
	{
		size_t		len = strlen(channels[i]);

		if (len == 0 || len > MAX_CHANNEL_LEN)
		{
			fprintf(stderr, "%s: invalid channel \"%s\": a channel name has 1 to %d bytes\n\n",
					progname, channels[i], MAX_CHANNEL_LEN);
			usage(stderr);
			return 2;
		}
	}

	if (pipe(stop_pipe) != 0)
	{
		perror("pipe");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: let poll() return */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	serve(servers, nservers, channels, nchannels, drain);
	fprintf(stderr, "%s: stopped\n", progname);
	free(servers);
	return 0;
}
