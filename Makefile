# session_stream: build with PGXS
#
#   make && sudo make install
#   make installcheck        (each harness starts its own throwaway server)

MODULE_big = session_stream
OBJS = \
	src/session_stream.o \
	src/sessions.o \
	src/trigger_args.o \
	src/source.o \
	src/btree_probe.o \
	src/results.o \
	src/bulk_insert.o \
	src/realtime.o \
	src/erasure.o \
	src/edits.o \
	src/replicas.o \
	src/txid_base.o \
	src/windows.o \
	src/batch.o \
	src/consume.o \
	src/pending.o \
	src/consumer.o \
	src/launcher.o \
	src/retention.o \
	src/rules.o \
	src/evaluate.o \
	src/notify.o \
	src/calendar.o \
	src/business_time.o \
	src/reports.o \
	src/sla_policies.o \
	src/slas.o \
	src/shards.o

EXTENSION = session_stream
DATA = session_stream--0.1.sql session_stream--0.1--0.2.sql
PGFILEDESC = "session_stream - exact virtual sessions and feed rules"

REGRESS = init realtime_customer realtime_pair realtime_probe realtime_edits trigger_errors consume consume_stats consume_edits consume_bulk consumer feed_rules feed_alerts calendar response_times slas shards search_path replicas
REGRESS_OPTS = --temp-instance=tmp_regress --temp-config=test/temp.conf

ISOLATION = same_key edit_race consume_race take_alerts feed_notify slas_race
ISOLATION_OPTS = --temp-instance=tmp_isolation --temp-config=test/temp.conf

TAP_TESTS = 1

# PostgreSQL's own headers trip -Wunused-parameter, so that one is off.
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Werror
EXTRA_CLEAN = tmp_regress tmp_isolation results output_iso

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on the shared header (after the include, so that
# PGXS's "all" stays the default goal)
$(OBJS): src/session_stream.h src/compat.h

# The listener client, session_stream_listen, is a PGXS PROGRAM with a
# Makefile of its own (src/listen); make, make install and make clean
# recurse into it.
all: listen-all
install: listen-install
uninstall: listen-uninstall
clean: listen-clean

listen-all listen-install listen-uninstall listen-clean:
	$(MAKE) -C src/listen PG_CONFIG=$(PG_CONFIG) $(patsubst listen-%,%,$@)

.PHONY: listen-all listen-install listen-uninstall listen-clean
