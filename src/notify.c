/*-------------------------------------------------------------------------
 *
 * notify.c
 *	  Deliver a feed rule's alert: the JSON text, then NOTIFY, the outbox
 *	  table session_stream.alerts, or both.
 *
 * The alert is
 *
 *	  {"rule":"c2_high","table":"public.feed","op":"UPDATE","row":{...}}
 *
 * with the row as row_to_json() writes it.  By the rule's delivery:
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
 * notification.  Channel names were checked when the rule was written.
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

/* Insert the alert into session_stream.alerts; returns its alert_id. */
static int64
outbox_insert(const SSRule *rule, const char *alert)
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
	slot->tts_values[outbox.rule - 1] = CStringGetTextDatum(rule->name);
	slot->tts_isnull[outbox.rule - 1] = false;
	slot->tts_values[outbox.channel - 1] = CStringGetTextDatum(rule->channel);
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

void
notify_alert(const SSRuleSet *set, const SSRule *rule, const char *op,
			 TupleTableSlot *row)
{
	StringInfoData alert;
	StringInfoData message;
	bool		to_outbox = (rule->delivery & SS_DELIVER_OUTBOX) != 0;
	bool		to_notify = (rule->delivery & SS_DELIVER_NOTIFY) != 0;
	int64		alert_id = 0;

	initStringInfo(&alert);
	build_alert(&alert, set, rule, op, row);

	/* a channel NOTIFY would refuse (check_feed_rule() was bypassed) */
	if (to_notify && (rule->channel[0] == '\0' ||
					  strlen(rule->channel) >= NAMEDATALEN))
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
	if (to_notify && alert.len + (to_outbox ? 33 : 0) >= SS_NOTIFY_PAYLOAD_MAX)
		to_outbox = true;

	if (to_outbox)
		alert_id = outbox_insert(rule, alert.data);
	if (!to_notify)
		return;

	initStringInfo(&message);
	if (!to_outbox)
		appendBinaryStringInfo(&message, alert.data, alert.len);
	else if (alert.len + 33 < SS_NOTIFY_PAYLOAD_MAX)
	{
		/* both: the alert, and the id of its outbox row */
		appendBinaryStringInfo(&message, alert.data, alert.len - 1);
		appendStringInfo(&message, ",\"alert_id\":" INT64_FORMAT "}", alert_id);
	}
	else
	{
		/* too large: a pointer to the outbox row */
		appendStringInfoString(&message, "{\"rule\":");
		escape_json(&message, rule->name);
		appendStringInfo(&message, ",\"alert_id\":" INT64_FORMAT "}", alert_id);
	}
	Async_Notify(rule->channel, message.data);
}
