/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  Deliver an alert: NOTIFY, the outbox table session_stream.alerts, or
 *	  both.  Feed rules (evaluate.c) and SLA policies (slas.c) send their
 *	  alerts through here.
 *
 * A feed rule's alert is built here:
 *
 *	  {"rule":"c2_high","table":"public.feed","op":"UPDATE","row":{...}}
 *
 * with the row as row_to_json() writes it; an SLA policy builds its own
 * ({"policy":"first_reply",...}) and hands it to notify_deliver() with its
 * route: the kind of sender ("rule" or "policy", the key that names it in
 * the alert), its name, channel and delivery.  By the delivery:
 *
 *	  notify	NOTIFY channel with the alert (sent at commit, so a rolled
 *				back row alerts nobody; at most once: a listener that is
 *				not connected misses it).
 *	  outbox	a row in session_stream.alerts, committed with the writer's
 *				row, taken by take_alerts(); no notification.
 *	  both		the outbox row, and NOTIFY with the alert plus its
 *				"alert_id", so that a listener can take that row (its
 *				acknowledgement) and a later drain does not deliver it twice.
 *
 * The writer's transaction must not fail because of an alert, and NOTIFY
 * raises errors of its own: a payload of 8000 bytes or more is refused at
 * once, and a notification queue that fills up fails the COMMIT.  So an
 * alert too large for NOTIFY goes to the outbox and the notification
 * carries only {"rule":"c2_high","alert_id":42}; and when the queue is
 * half full (a listener has stopped reading) alerts go to the outbox with no
 * notification.  Channel names and deliveries were checked when the rule
 * or policy was written (notify_check_route()).
 *
 * Outbox rows are written through the executor's simple-relation routines,
 * as results.c does, without SPI and without the writer's privileges on the
 * outbox (the extension owns it).
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/async.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/*
 * NOTIFY refuses payloads of this many bytes or more (async.c:
 * NOTIFY_PAYLOAD_MAX_LENGTH, BLCKSZ - NAMEDATALEN - 128).
 */
#define SS_NOTIFY_PAYLOAD_MAX (BLCKSZ - NAMEDATALEN - 128)

/* Past this fraction of the queue, alerts stop using NOTIFY. */
#define SS_NOTIFY_QUEUE_LIMIT 0.5

/* Where the outbox is, looked up once and dropped on its invalidation. */
typedef struct Outbox
{
	bool		valid;
	Oid			relid;
	Oid			seqid;
	AttrNumber	alert_id;
	AttrNumber	rule;
	AttrNumber	channel;
	AttrNumber	payload;
	AttrNumber	created_at;
} Outbox;

static Outbox outbox = {false};
static bool outbox_callback_registered = false;

static void
outbox_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == outbox.relid || relid == outbox.seqid)
		outbox.valid = false;
}

static AttrNumber
outbox_attnum(TupleDesc desc, const char *name)
{
	return ss_extension_attnum(desc, "alerts", name);
}

static void
outbox_find(void)
{
	Oid			nspid = get_namespace_oid("session_stream", false);
	Relation	rel;

	if (!outbox_callback_registered)
	{
		CacheRegisterRelcacheCallback(outbox_invalidate, (Datum) 0);
		outbox_callback_registered = true;
	}
	outbox.relid = get_relname_relid("alerts", nspid);
	outbox.seqid = get_relname_relid("alerts_alert_id_seq", nspid);
	if (!OidIsValid(outbox.relid) || !OidIsValid(outbox.seqid))
		elog(ERROR, "table session_stream.alerts or its sequence is missing");
	rel = table_open(outbox.relid, AccessShareLock);
	outbox.alert_id = outbox_attnum(RelationGetDescr(rel), "alert_id");
	outbox.rule = outbox_attnum(RelationGetDescr(rel), "rule");
	outbox.channel = outbox_attnum(RelationGetDescr(rel), "channel");
	outbox.payload = outbox_attnum(RelationGetDescr(rel), "payload");
	outbox.created_at = outbox_attnum(RelationGetDescr(rel), "created_at");
	table_close(rel, AccessShareLock);
	outbox.valid = true;
}

/*
 * Insert the alert into session_stream.alerts (its "rule" column holds the
 * sender's name); returns its alert_id.
 */
static int64
outbox_insert(const SSAlertRoute *route, const char *alert)
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int64		alert_id;

	if (!outbox.valid)
		outbox_find();

	rel = table_open(outbox.relid, RowExclusiveLock);
	estate = CreateExecutorState();
	estate->es_output_cid = GetCurrentCommandId(true);
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsVirtual);

	ExecClearTuple(slot);
	memset(slot->tts_isnull, true, slot->tts_tupleDescriptor->natts * sizeof(bool));
	alert_id = nextval_internal(outbox.seqid, false);
	slot->tts_values[outbox.alert_id - 1] = Int64GetDatum(alert_id);
	slot->tts_isnull[outbox.alert_id - 1] = false;
	slot->tts_values[outbox.rule - 1] = CStringGetTextDatum(route->name);
	slot->tts_isnull[outbox.rule - 1] = false;
	slot->tts_values[outbox.channel - 1] = CStringGetTextDatum(route->channel);
	slot->tts_isnull[outbox.channel - 1] = false;
	slot->tts_values[outbox.payload - 1] =
		DirectFunctionCall1(jsonb_in, CStringGetDatum(alert));
	slot->tts_isnull[outbox.payload - 1] = false;
	slot->tts_values[outbox.created_at - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	slot->tts_isnull[outbox.created_at - 1] = false;
	ExecStoreVirtualTuple(slot);

	/* AFTER triggers a user put on the outbox fire as for an INSERT. */
	AfterTriggerBeginQuery();
	ExecSimpleRelationInsert(rri, estate, slot);
	AfterTriggerEndQuery(estate);

	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	return alert_id;
}

/*
 * Is the notification queue below SS_NOTIFY_QUEUE_LIMIT?  Asked once per
 * transaction: it takes the queue's lock.
 */
#if PG_VERSION_NUM >= 170000
#define SS_MY_LXID (MyProc->vxid.lxid)
#else
#define SS_MY_LXID (MyProc->lxid)
#endif

static bool
notify_queue_has_room(void)
{
	static LocalTransactionId checked_in = InvalidLocalTransactionId;
	static bool has_room = true;

	if (checked_in != SS_MY_LXID)
	{
		LOCAL_FCINFO(fcinfo, 0);
		Datum		usage;

		InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
		usage = pg_notification_queue_usage(fcinfo);
		has_room = DatumGetFloat8(usage) < SS_NOTIFY_QUEUE_LIMIT;
		checked_in = SS_MY_LXID;
	}
	return has_room;
}

/* {"rule":...,"table":...,"op":...,"row":{...}} */
static void
build_alert(StringInfo buf, const SSRuleSet *set, const SSRule *rule,
			const char *op, TupleTableSlot *row)
{
	Datum		row_json;

	row_json = DirectFunctionCall1(row_to_json,
								   ExecFetchSlotHeapTupleDatum(row));
	appendStringInfoString(buf, "{\"rule\":");
	escape_json(buf, rule->name);
	appendStringInfoString(buf, ",\"table\":");
	escape_json(buf, set->table_name);
	appendStringInfo(buf, ",\"op\":\"%s\",\"row\":", op);
	appendStringInfoString(buf, TextDatumGetCString(row_json));
	appendStringInfoChar(buf, '}');
}

/*
 * Send one alert (a JSON object) the route's way.  Never fails the caller
 * because of NOTIFY's limits: see the header comment.
 */
void
notify_deliver(const SSAlertRoute *route, const char *alert, int len)
{
	StringInfoData message;
	bool		to_outbox = (route->delivery & SS_DELIVER_OUTBOX) != 0;
	bool		to_notify = (route->delivery & SS_DELIVER_NOTIFY) != 0;
	int64		alert_id = 0;

	/* a channel NOTIFY would refuse (the check when written was bypassed) */
	if (to_notify && (route->channel[0] == '\0' ||
					  strlen(route->channel) >= NAMEDATALEN))
	{
		to_notify = false;
		to_outbox = true;
	}
	if (to_notify && !notify_queue_has_room())
	{
		to_notify = false;
		to_outbox = true;
	}
	/* + ,"alert_id":<up to 20 digits> for "both" */
	if (to_notify && len + (to_outbox ? 33 : 0) >= SS_NOTIFY_PAYLOAD_MAX)
		to_outbox = true;

	if (to_outbox)
		alert_id = outbox_insert(route, alert);
	if (!to_notify)
		return;

	initStringInfo(&message);
	if (!to_outbox)
		appendBinaryStringInfo(&message, alert, len);
	else if (len + 33 < SS_NOTIFY_PAYLOAD_MAX)
	{
		/* both: the alert, and the id of its outbox row */
		appendBinaryStringInfo(&message, alert, len - 1);
		appendStringInfo(&message, ",\"alert_id\":" INT64_FORMAT "}", alert_id);
	}
	else
	{
		/* too large: a pointer to the outbox row */
		appendStringInfo(&message, "{\"%s\":", route->kind);
		escape_json(&message, route->name);
		appendStringInfo(&message, ",\"alert_id\":" INT64_FORMAT "}", alert_id);
	}
	Async_Notify(route->channel, message.data);
}

/* A feed rule's alert about a row. */
void
notify_alert(const SSRuleSet *set, const SSRule *rule, const char *op,
			 TupleTableSlot *row)
{
	StringInfoData alert;
	SSAlertRoute route;

	initStringInfo(&alert);
	build_alert(&alert, set, rule, op, row);
	route.kind = "rule";
	route.name = rule->name;
	route.channel = rule->channel;
	route.delivery = rule->delivery;
	notify_deliver(&route, alert.data, alert.len);
}

/* Delivery bits of "notify", "outbox" or "both"; 0 for anything else. */
int
notify_parse_delivery(const char *delivery)
{
	if (delivery == NULL)
		return 0;
	if (strcmp(delivery, "notify") == 0)
		return SS_DELIVER_NOTIFY;
	if (strcmp(delivery, "outbox") == 0)
		return SS_DELIVER_OUTBOX;
	if (strcmp(delivery, "both") == 0)
		return SS_DELIVER_NOTIFY | SS_DELIVER_OUTBOX;
	return 0;
}

/*
 * Check the delivery and channel of a feed rule or SLA policy being
 * written ("what" says which, e.g. "feed rule"), as NOTIFY would check the
 * channel when an alert is sent.
 */
void
notify_check_route(const char *what, const char *name, const char *channel,
				   const char *delivery)
{
	size_t		channel_len;

	if (notify_parse_delivery(delivery) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid delivery \"%s\" for %s \"%s\"",
						delivery, what, name),
				 errhint("Valid values are \"notify\", \"outbox\" and \"both\".")));
	channel_len = strlen(channel);
	if (channel_len == 0 || channel_len >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid channel \"%s\" for %s \"%s\"",
						channel, what, name),
				 errdetail("A NOTIFY channel name has 1 to %d bytes; this one has %zu.",
						   NAMEDATALEN - 1, channel_len),
				 errhint("Choose a channel name of 1 to %d bytes.", NAMEDATALEN - 1)));
}
