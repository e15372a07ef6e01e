/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The server functions session_stream calls whose signatures differ
 *	  between PostgreSQL 15, 16 and 17.
 *
 * Each ss_NAME() macro takes PostgreSQL 15's arguments for NAME() (plus
 * any a later version needs that 15 lacks) and calls the server's own
 * NAME() with the arguments of the version we are built against.  The
 * arguments a later version adds get the value that keeps 15's
 * behaviour.  They are macros, not inline functions, so that this file
 * needs none of the headers declaring NAME(): the file calling it
 * includes those.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SS_COMPAT_H
#define SS_COMPAT_H

/*
 * 16 gave stringToQualifiedNameList() a soft-error context; without one
 * (NULL) it throws, as 15's does.
 */
#if PG_VERSION_NUM >= 160000
#define ss_stringToQualifiedNameList(string) \
	stringToQualifiedNameList((string), NULL)
#else
#define ss_stringToQualifiedNameList(string) \
	stringToQualifiedNameList(string)
#endif

/*
 * 16 added the list of result relations an EvalPlanQual recheck starts.
 * Ours rechecks nothing (ExecSimpleRelationUpdate() and Delete() only
 * hand the state to BEFORE triggers), so NIL, as logical replication's
 * apply worker passes.
 */
#if PG_VERSION_NUM >= 160000
#define ss_EvalPlanQualInit(epqstate, parentestate, subplan, auxrowmarks, epqParam) \
	EvalPlanQualInit((epqstate), (parentestate), (subplan), (auxrowmarks), \
					 (epqParam), NIL)
#else
#define ss_EvalPlanQualInit(epqstate, parentestate, subplan, auxrowmarks, epqParam) \
	EvalPlanQualInit((epqstate), (parentestate), (subplan), (auxrowmarks), \
					 (epqParam))
#endif

/*
 * 16 added onlySummarizing (insert only into summarizing indexes, for a
 * HOT update); false inserts into all of them, as 15 does.
 */
#if PG_VERSION_NUM >= 160000
#define ss_ExecInsertIndexTuples(rri, slot, estate, update, noDupErr, specConflict, arbiterIndexes) \
	ExecInsertIndexTuples((rri), (slot), (estate), (update), (noDupErr), \
						  (specConflict), (arbiterIndexes), false)
#else
#define ss_ExecInsertIndexTuples(rri, slot, estate, update, noDupErr, specConflict, arbiterIndexes) \
	ExecInsertIndexTuples((rri), (slot), (estate), (update), (noDupErr), \
						  (specConflict), (arbiterIndexes))
#endif

/*
 * 17 lets a bitmap heap scan skip reading all-visible pages when its
 * caller needs no column values; ours needs them.
 */
#if PG_VERSION_NUM >= 170000
#define ss_table_beginscan_bm(rel, snapshot, nkeys, key) \
	table_beginscan_bm((rel), (snapshot), (nkeys), (key), true)
#else
#define ss_table_beginscan_bm(rel, snapshot, nkeys, key) \
	table_beginscan_bm((rel), (snapshot), (nkeys), (key))
#endif

/*
 * 16 replaced pg_class_ownercheck() and its kin with object_ownercheck().
 */
#if PG_VERSION_NUM >= 160000
#define ss_pg_class_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#else
#define ss_pg_class_ownercheck(relid, roleid) \
	pg_class_ownercheck((relid), (roleid))
#endif

/*
 * nbtree internals (access/nbtree.h), for btree_probe.c.
 *
 * _bt_search(): 16 added the heap relation, needed only when a write may
 * split pages (NULL is allowed for BT_READ); 17 dropped the snapshot,
 * which only old_snapshot_threshold's check used, along with that
 * setting.
 */
#if PG_VERSION_NUM >= 170000
#define ss_bt_search(rel, key, bufP, access, snapshot) \
	_bt_search((rel), NULL, (key), (bufP), (access))
#elif PG_VERSION_NUM >= 160000
#define ss_bt_search(rel, key, bufP, access, snapshot) \
	_bt_search((rel), NULL, (key), (bufP), (access), (snapshot))
#else
#define ss_bt_search(rel, key, bufP, access, snapshot) \
	_bt_search((rel), (key), (bufP), (access), (snapshot))
#endif

/*
 * BTScanInsertData: 17 replaced pivotsearch (false: a search for leaf
 * entries) with backward (false: a forward scan's search).  For a forward
 * search of leaf entries both are false, and _bt_compare() treats a
 * scan key equal to a truncated pivot's untruncated attributes as
 * greater than it either way.
 */
#if PG_VERSION_NUM >= 170000
#define ss_bt_set_forward_search(key) ((key)->backward = false)
#else
#define ss_bt_set_forward_search(key) ((key)->pivotsearch = false)
#endif

#endif							/* SS_COMPAT_H */
