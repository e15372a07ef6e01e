/*-------------------------------------------------------------------------
 *
 * sessions.c
 *	  The virtual-session state machine: apply one message to a key, or
 *	  replay a key's messages in event-time order.
 *
 * A key is a customer (customer mode) or a (customer, agent) pair (pair
 * mode); the caller hands this file only the messages of one key.  Between
 * two messages a key is either idle or has one open session.
 *
 *	  customer message, idle		-> open a session at sent_at
 *	  customer message, open		-> nothing (the session keeps its start)
 *	  agent message, open			-> answer it: responder, answered_at
 *	  agent message, idle			-> nothing
 *
 * Messages are replayed in event-time order: by sent_at, then customer
 * messages before agent messages of the same instant, then by agent id.
 * Arrival order never matters.  Example, customer mode, customer 2:
 *
 *	  10:24:58.5  agent 10 -> 2		idle: nothing
 *	  10:25:00.5  2 -> agent 25		opens a session at 10:25:00.5
 *	  10:25:04.2  2 -> agent 62		already open: nothing
 *	  10:25:04.4  agent 45 -> 2		answers it: responder 45, 3.8 s
 *
 * gives one session (2, 10:25:00.5, 45, 10:25:04.4) whatever order the four
 * rows were inserted in.
 *
 * A session's answer is itself a message (answered_at, from agent,
 * responder); after it the key is idle, so a replay may restart right after
 * any answer without looking further back.  That is what makes recomputing
 * a key after a late message cheap (see realtime.c).
 *
 * This file does no catalog or table access so the realtime trigger and the
 * deferred consumer share it unchanged.
 *
 *-------------------------------------------------------------------------
 */
#include "session_stream.h"

static int
compare_messages_qsort(const void *a, const void *b)
{
	return sessions_compare_messages((const SSMessage *) a,
									 (const SSMessage *) b);
}

void
sessions_sort(SSMessage *messages, int count)
{
	if (count > 1)
		qsort(messages, count, sizeof(SSMessage), compare_messages_qsort);
}

/* The message that answered a closed session. */
void
sessions_closing_message(const SSSession *session, SSMessage *out)
{
	Assert(!session->is_open);
	out->customer_id = session->customer_id;
	out->agent_id = session->agent_id;
	out->sent_at = session->answered_at;
	out->from_agent = true;
}

/*
 * Apply one message to a key's state.  The message must not precede any
 * message already applied to that state.
 */
SSStep
sessions_apply(SSKeyState *state, const SSMessage *message)
{
	if (!message->from_agent)
	{
		if (state->is_open)
			return SS_STEP_NOTHING;
		state->is_open = true;
		state->opened_at = message->sent_at;
		return SS_STEP_OPENED;
	}

	/*
	 * In event-time order sent_at >= opened_at always holds here; the test
	 * keeps the definition's wording and guards callers that apply a
	 * message out of order.
	 */
	if (!state->is_open || message->sent_at < state->opened_at)
		return SS_STEP_NOTHING;
	state->is_open = false;
	return SS_STEP_CLOSED;
}

/*
 * Replay messages of one key, already sorted, starting from "initial" (an
 * idle key if NULL).  Every answered session is handed to the sink as it
 * closes, and a session still open at the end is handed over last; a
 * session that was already open in "initial" is marked was_open, so the
 * sink can update it rather than insert it.
 */
void
sessions_replay(const SSKeyState *initial, const SSMessage *sorted, int count,
				SSSessionSink sink, void *sink_arg)
{
	SSKeyState	state = {false, 0};
	SSSession	session;
	int			i;

	memset(&session, 0, sizeof(session));
	if (initial != NULL && initial->is_open && count > 0)
	{
		state = *initial;
		session.customer_id = sorted[0].customer_id;
		session.agent_id = sorted[0].agent_id;
		session.was_open = true;
	}

	for (i = 0; i < count; i++)
	{
		const SSMessage *message = &sorted[i];
		int64		opened_at = state.opened_at;

		Assert(i == 0 || sessions_compare_messages(&sorted[i - 1], message) <= 0);
		switch (sessions_apply(&state, message))
		{
			case SS_STEP_NOTHING:
				break;
			case SS_STEP_OPENED:
				session.customer_id = message->customer_id;
				session.agent_id = message->agent_id;
				session.was_open = false;
				break;
			case SS_STEP_CLOSED:
				session.agent_id = message->agent_id;
				session.opened_at = opened_at;
				session.answered_at = message->sent_at;
				session.is_open = false;
				sink(&session, sink_arg);
				session.was_open = false;
				break;
		}
	}

	/* A session open before and still open has nothing new to say. */
	if (state.is_open && !session.was_open)
	{
		session.opened_at = state.opened_at;
		session.answered_at = 0;
		session.is_open = true;
		sink(&session, sink_arg);
	}
}
