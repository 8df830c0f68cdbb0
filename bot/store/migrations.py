"""The schema, grown by named migrations applied once each and recorded in ``_sqlite_migrations``.

Read top to bottom, this is the history of the schema. Never edit a migration that has shipped: add
a new one. Times are Unix epoch seconds (REAL) so that comparisons and buckets are plain arithmetic.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("djobea")


@MIGRATIONS()
def m001_llm_calls(db: Database) -> None:
    """Every attempt at a provider: the ledger behind analytics, costs and the admin status."""
    db["llm_calls"].create(
        {
            "id": str,  # attempt id, chosen by LLMService before the call
            "request_id": str,  # shared by the attempts of one LLMService.complete()
            "started_at": float,
            "purpose": str,  # chat, suggestions, selftest, ...
            "provider": str,  # deployment name in router_config, e.g. "claude"
            "model": str,
            "deployment_id": str,
            "outcome": str,  # success | failure
            "error_kind": str,
            "http_status": int,
            "latency_ms": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
            "fallback_depth": int,  # 0 = first provider tried
            "retry_index": int,  # 0 = first call to this provider in this request
            "error_message": str,  # scrubbed of keys, truncated
            "recorded_by": str,  # litellm_callback | llm_service (when LiteLLM dropped the callback)
        },
        pk="id",
    )
    db["llm_calls"].create_index(["started_at"])
    db["llm_calls"].create_index(["provider", "started_at"])
    db["llm_calls"].create_index(["request_id"])


@MIGRATIONS()
def m002_provider_health(db: Database) -> None:
    """One row per provider: the state every worker reads before calling it."""
    db["provider_health"].create(
        {
            "provider": str,
            "state": str,  # healthy | degraded | cooling_down | benched | disabled
            "reason": str,
            "error_kind": str,
            "since": float,
            "until": float,  # end of a cooldown; NULL otherwise
            "consecutive_failures": int,
            "cooldown_level": int,  # grows the next cooldown while failures repeat
            "trial_lease_until": float,  # a worker holding this tests a provider whose cooldown ended
            "last_success_at": float,
            "last_failure_at": float,
        },
        pk="provider",
        not_null={"state"},
        defaults={"consecutive_failures": 0, "cooldown_level": 0},
    )


@MIGRATIONS()
def m003_provider_events(db: Database) -> None:
    """State changes of providers (from, to, why, who): the audit trail and the source of alerts."""
    db["provider_events"].create(
        {
            "id": int,
            "at": float,
            "provider": str,
            "from_state": str,
            "to_state": str,
            "reason": str,
            "error_kind": str,
            "actor": str,  # traffic, probe, admin:<name>
        },
        pk="id",
    )
    db["provider_events"].create_index(["provider", "at"])


# == WhatsApp conversation (m1xx) =========================================================================
# (migrations of the conversation area are appended here, named m101_..., m102_...)


@MIGRATIONS()
def m101_inbound_messages(db: Database) -> None:
    """Every customer message, stored before the webhook answers: the durable queue workers claim with leases."""
    db["inbound_messages"].create(
        {
            "id": int,
            "message_sid": str,  # Twilio's MessageSid (or chat:<uuid>); unique, so a redelivery is a no-op
            "channel": str,  # whatsapp | chat
            "customer_id": str,  # +2376... for phones, else the chat user id; one conversation per customer
            "from_number": str,
            "to_number": str,
            "body": str,
            "profile_name": str,
            "media": str,  # JSON list of {"url", "content_type"}
            "latitude": float,
            "longitude": float,
            "form": str,  # the whole Twilio form as JSON, so fields Twilio adds later are kept too
            "received_at": float,
            "status": str,  # pending | done | expired | failed
            "attempts": int,
            "next_attempt_at": float,
            "lease_owner": str,  # host:pid:thread of the worker holding it
            "lease_token": str,  # fencing token: writes made for a claim check it is still theirs
            "lease_until": float,
            "last_error": str,
            "done_at": float,
        },
        pk="id",
        not_null={"message_sid", "customer_id", "status"},
        defaults={"attempts": 0, "status": "pending", "next_attempt_at": 0.0},
    )
    db["inbound_messages"].create_index(["message_sid"], unique=True)
    db["inbound_messages"].create_index(["status", "next_attempt_at"])
    db["inbound_messages"].create_index(["customer_id", "status", "id"])


@MIGRATIONS()
def m102_conversations(db: Database) -> None:
    """One conversation per customer and its turns: the history the engine reads back on every message."""
    db["conversations"].create(
        {
            "id": int,
            "customer_id": str,
            "channel": str,
            "language": str,  # fr | en | pcm, the language the customer writes in
            "profile_name": str,
            "created_at": float,
            "updated_at": float,
            "last_inbound_at": float,  # opens WhatsApp's 24-hour window for free-form replies
        },
        pk="id",
        not_null={"customer_id"},
    )
    db["conversations"].create_index(["customer_id"], unique=True)
    db["conversation_messages"].create(
        {
            "id": int,
            "conversation_id": int,
            "role": str,  # user | assistant
            "content": str,
            "at": float,
            "inbound_id": int,
            "provider": str,  # which LLM deployment wrote an assistant turn
            "kind": str,  # message | holding
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
    )
    db["conversation_messages"].create_index(["conversation_id", "id"])


@MIGRATIONS()
def m103_service_requests(db: Database) -> None:
    """The service request a conversation accumulates: collecting -> awaiting_confirmation -> confirmed."""
    db["service_requests"].create(
        {
            "id": int,
            "conversation_id": int,
            "customer_id": str,
            "status": str,  # collecting | awaiting_confirmation | confirmed | cancelled
            "service_type": str,  # plomberie | electricite | electromenager
            "location": str,  # quartier / landmark, or "WhatsApp location" for a shared pin
            "latitude": float,
            "longitude": float,
            "description": str,
            "urgency": str,  # urgent | today | this_week | flexible, or a preferred time in words
            "media": str,  # JSON list of {"url", "content_type"} the customer sent
            "language": str,
            "created_at": float,
            "updated_at": float,
            "confirmed_at": float,
        },
        pk="id",
        not_null={"conversation_id", "status"},
        foreign_keys=[("conversation_id", "conversations", "id")],
    )
    db["service_requests"].create_index(["conversation_id", "status"])
    db["service_requests"].create_index(["status", "created_at"])


@MIGRATIONS()
def m104_outbound_messages(db: Database) -> None:
    """Every message we send, recorded *before* the send under an idempotency key, so a restart never
    sends a reply twice and never loses one."""
    db["outbound_messages"].create(
        {
            "id": int,
            "idempotency_key": str,  # <inbound id>:reply:<part> | <inbound id>:holding
            "inbound_id": int,
            "customer_id": str,
            "to_number": str,
            "kind": str,  # reply | holding
            "part": int,
            "parts": int,
            "body": str,
            "provider": str,
            # pending (not yet handed to Twilio) | in_flight (handed over, answer not yet recorded)
            # | Twilio's own status from then on: queued, sent, delivered, read, failed, undelivered
            # | failed (refused by Twilio: error_code says why) | sandbox (no Twilio credentials: kept here)
            "status": str,
            "twilio_sid": str,
            "error_code": int,
            "error_reason": str,
            "attempts": int,
            "next_attempt_at": float,
            "send_started_at": float,
            "sent_at": float,
            "status_at": float,
            "created_at": float,
        },
        pk="id",
        not_null={"idempotency_key", "status"},
        defaults={"attempts": 0, "next_attempt_at": 0.0},
    )
    db["outbound_messages"].create_index(["idempotency_key"], unique=True)
    db["outbound_messages"].create_index(["inbound_id"])
    db["outbound_messages"].create_index(["twilio_sid"])
    db["outbound_messages"].create_index(["status", "created_at"])


@MIGRATIONS()
def m105_message_status_events(db: Database) -> None:
    """Twilio's delivery status callbacks as received (the outbound row keeps only the latest)."""
    db["message_status_events"].create(
        {
            "id": int,
            "at": float,
            "outbound_id": int,
            "twilio_sid": str,
            "status": str,
            "error_code": int,
            "error_reason": str,
        },
        pk="id",
    )
    db["message_status_events"].create_index(["twilio_sid"])


@MIGRATIONS()
def m106_inbound_giving_up(db: Database) -> None:
    """A message is not retried for ever: unexpected errors are counted, and when the worker gives up it records
    why before the apology is sent, so the message ends ``failed`` and the customer's next ones go on."""
    db["inbound_messages"].add_column("errors", int, not_null_default=0)  # exceptions while processing it
    db["inbound_messages"].add_column("give_up_reason", str)  # set once given up; the apology is on its way


@MIGRATIONS()
def m107_inbound_signed_payload(db: Database) -> None:
    """Twilio's signature joins names and values with no separator, so one signed payload can be re-cut into
    another MessageSid: the digest of what was signed is kept, unique, and a second delivery of it is a no-op."""
    db["inbound_messages"].add_column("payload_digest", str)  # sha256 of the signed URL + concatenated form
    db.execute(
        "create unique index idx_inbound_messages_payload_digest on inbound_messages (payload_digest)"
        " where payload_digest is not null"
    )


@MIGRATIONS()
def m108_outbound_twilio_sid_unique(db: Database) -> None:
    """A Twilio message confirms at most one outbound row. Rows that an earlier lookup wrongly matched to a SID
    another row already holds lose it and are marked failed with why (they were never confirmed)."""
    db.execute(
        """
        update outbound_messages
        set status = 'failed', twilio_sid = null,
            error_reason = 'its Twilio SID belonged to an earlier outbound row: delivery never confirmed'
        where twilio_sid is not null and twilio_sid != '' and id > (
            select min(o.id) from outbound_messages o where o.twilio_sid = outbound_messages.twilio_sid
        )
        """
    )
    db.execute(
        "create unique index idx_outbound_messages_twilio_sid_unique on outbound_messages (twilio_sid)"
        " where twilio_sid is not null and twilio_sid != ''"
    )


@MIGRATIONS()
def m109_chat_sessions(db: Database) -> None:
    """Web-chat conversations are named by a credential the server issued, never by the client's ``user`` id.
    Only a hash of the token is kept, so a copy of the database opens no conversation."""
    db["chat_sessions"].create(
        {
            "token_hash": str,  # sha256 hex of the bearer token handed to the client once
            "customer_id": str,  # chat:<random id>: the conversation key the engine uses
            "user_label": str,  # what the client called itself (display only, never a key)
            "created_at": float,
            "last_seen_at": float,
        },
        pk="token_hash",
        not_null={"customer_id", "created_at"},
    )
    db["chat_sessions"].create_index(["customer_id"], unique=True)


@MIGRATIONS()
def m110_rate_limits(db: Database) -> None:
    """Request counters shared by every worker process, one row per limited key and fixed window."""
    db["rate_limit_windows"].create(
        {
            "key": str,  # e.g. chat:ip:203.0.113.9, chat:session:<id>, suggestions:ip:...
            "window_start": float,  # epoch seconds, a multiple of the window's length
            "hits": int,
        },
        pk=("key", "window_start"),
        not_null={"hits"},
    )
    db["rate_limit_windows"].create_index(["window_start"])


# == Admin side (m2xx) =====================================================================================
# (migrations of the admin area are appended here, named m201_..., m202_...)


@MIGRATIONS()
def m201_scheduler_runs(db: Database) -> None:
    """One row per scheduled job: its last run, claimed in a transaction so two schedulers never both run it."""
    db["scheduler_runs"].create(
        {
            "job": str,
            "last_started_at": float,
            "last_finished_at": float,
            "holder": str,  # host:pid of the scheduler that ran it
            "last_error": str,
            "runs": int,
        },
        pk="job",
        defaults={"runs": 0},
    )


@MIGRATIONS()
def m202_admin_alerts(db: Database) -> None:
    """Alerts derived from provider_events: a cursor over event ids, and each alert with its delivery state."""
    db["admin_alert_cursor"].create({"name": str, "last_event_id": int}, pk="name")
    db["admin_alerts"].create(
        {
            "id": int,
            "dedupe_key": str,  # kind:provider:event id; unique, so an alert is never created twice
            "at": float,
            "kind": str,  # benched | recovered | all_down | all_recovered
            "provider": str,
            "message": str,
            "advice": str,
            "event_id": int,
            "delivery": str,  # pending | delivered | failed
            "attempts": int,
            "claimed_until": float,  # a process delivering it holds this lease
            "delivered_at": float,
            "sinks_done": str,  # comma-separated sinks already sent to, so a retry never repeats them
            "last_error": str,
        },
        pk="id",
        not_null={"dedupe_key", "delivery"},
        defaults={"attempts": 0, "delivery": "pending"},
    )
    db["admin_alerts"].create_index(["dedupe_key"], unique=True)
    db["admin_alerts"].create_index(["delivery"])
    db["admin_alerts"].create_index(["at"])
    # Events already in the store when the admin side is installed are history, not news: start after them.
    last = db.execute("select coalesce(max(id), 0) from provider_events").fetchone()[0]
    db["admin_alert_cursor"].insert({"name": "alerts", "last_event_id": last})


@MIGRATIONS()
def m203_llm_call_totals(db: Database) -> None:
    """Running totals of llm_calls rolled up below a watermark, so /metrics counters stay monotonic after
    retention deletes old rows and a scrape only reads the recent tail of llm_calls."""
    db["llm_call_totals"].create(
        {
            "provider": str,
            "purpose": str,
            "outcome": str,
            "error_kind": str,  # '' for successes (NULL cannot be part of a primary key lookup)
            "attempts": int,
            "latency_ms_sum": float,
            "input_tokens": int,
            "output_tokens": int,
            "cost_usd": float,
        },
        pk=("provider", "purpose", "outcome", "error_kind"),
    )
    db["llm_latency_totals"].create(
        {"provider": str, "outcome": str, "le": str, "attempts": int},  # le: bucket upper bound in seconds
        pk=("provider", "outcome", "le"),
    )
    db["llm_rollup"].create({"name": str, "watermark": float}, pk="name")


@MIGRATIONS()
def m204_llm_calls_purpose_index(db: Database) -> None:
    """Probe cost per day filters on purpose = 'selftest' over a time range."""
    db["llm_calls"].create_index(["purpose", "started_at"])


@MIGRATIONS()
def m205_http_request_totals(db: Database) -> None:
    """HTTP responses and latency per route, added to by every web process (``bot.web.http_metrics``), so
    /metrics answers the same totals from any gunicorn worker."""
    db["http_response_totals"].create(
        {"route": str, "method": str, "status": int, "responses": int, "duration_s_sum": float},
        pk=("route", "method", "status"),
    )
    db["http_latency_totals"].create(
        {"route": str, "method": str, "le": str, "requests": int},  # le: bucket upper bound in seconds, cumulative
        pk=("route", "method", "le"),
    )


@MIGRATIONS()
def m206_outbound_status_error_code_index(db: Database) -> None:
    """/metrics counts outbound messages by status and Twilio error code at every scrape: a covering index
    keeps that an index scan (measured 38 ms for 600k rows, against 480 ms reading the table)."""
    db["outbound_messages"].create_index(["status", "error_code"])


# == Dispatch to artisans (m3xx) ===========================================================================
# (migrations of the dispatch area are appended here, named m301_..., m302_...)


@MIGRATIONS()
def m301_artisans(db: Database) -> None:
    """The artisan directory: who can be offered a request, for which trades and quartiers. An artisan is paused,
    never deleted, so the offers and assignments that name them keep their history."""
    db["artisans"].create(
        {
            "id": int,
            "name": str,
            "whatsapp": str,  # +2376..., unique: an inbound message from it goes to the dispatch handler
            "active": int,  # 1 = gets offers; 0 = paused
            "created_at": float,
            "updated_at": float,
            "paused_at": float,
            "last_offered_at": float,  # least recently offered first; NULL (never offered) before everyone
        },
        pk="id",
        not_null={"name", "whatsapp", "active"},
        defaults={"active": 1},
    )
    db["artisans"].create_index(["whatsapp"], unique=True)
    db["artisans"].create_index(["active", "last_offered_at"])
    # One row per trade (plomberie | electricite | electromenager) and per canonical quartier served; an artisan
    # with no quartier row serves the whole city.
    db["artisan_trades"].create(
        {"artisan_id": int, "trade": str},
        pk=("artisan_id", "trade"),
        foreign_keys=[("artisan_id", "artisans", "id")],
    )
    db["artisan_trades"].create_index(["trade"])
    db["artisan_quartiers"].create(
        {"artisan_id": int, "quartier": str},
        pk=("artisan_id", "quartier"),
        foreign_keys=[("artisan_id", "artisans", "id")],
    )
    db["artisan_quartiers"].create_index(["quartier"])


@MIGRATIONS()
def m302_request_dispatch(db: Database) -> None:
    """A confirmed request offered to artisans in batches until one accepts: its dispatch state, the offers (one
    per artisan and request) and every event, with who did it. Requests already confirmed when this ships are
    history, not news: they are recorded as not dispatched, so nobody is offered last month's leak."""
    db["service_requests"].add_column("artisan_id", int)  # who does the job (accepted offer, or staff)
    db["service_requests"].add_column("assigned_at", float)
    db["service_requests"].add_column("status_at", float)  # last staff or dispatch status change
    db["request_dispatch"].create(
        {
            "request_id": int,  # one row per request: inserting it is what starts a dispatch, exactly once
            # offering | exhausted (nobody accepted: staff alerted) | assigned | closed (done) | cancelled
            # | manual (no phone number to give an artisan: staff handle it) | not_dispatched (before m302)
            "state": str,
            "trade": str,
            "quartier": str,  # canonical quartier; NULL: the location matched none (every artisan of the trade)
            "batch": int,  # number of the latest batch offered (0 before the first)
            "deadline": float,  # when the latest batch times out without an acceptance
            "started_at": float,
            "updated_at": float,
        },
        pk="request_id",
        not_null={"state"},
        defaults={"batch": 0},
        foreign_keys=[("request_id", "service_requests", "id")],
    )
    db["request_dispatch"].create_index(["state", "deadline"])
    db["dispatch_offers"].create(
        {
            "id": int,
            "request_id": int,
            "artisan_id": int,
            "batch": int,
            # offered | accepted | declined | taken (another won) | withdrawn (request cancelled or closed)
            # | undeliverable (the message failed at Twilio) | skipped (window closed, no template: never sent)
            "status": str,
            "template": int,  # 1: sent as the approved template (the artisan's 24-hour window was closed)
            "offered_at": float,
            "answered_at": float,
            "answer": str,  # the artisan's words or button payload, truncated
            "outbound_key": str,  # idempotency key of the offer message in outbound_messages
        },
        pk="id",
        not_null={"request_id", "artisan_id", "status"},
        foreign_keys=[("request_id", "service_requests", "id"), ("artisan_id", "artisans", "id")],
    )
    db["dispatch_offers"].create_index(["request_id", "artisan_id"], unique=True)
    db["dispatch_offers"].create_index(["artisan_id", "status"])
    db["dispatch_events"].create(
        {
            "id": int,
            "at": float,
            "request_id": int,
            # started | offered | offer_skipped | declined | accepted | late_answer | batch_timeout | exhausted
            # | status (a staff or customer status change) | undeliverable | customer_notified | artisan_not_told
            "kind": str,
            "from_status": str,
            "to_status": str,
            "artisan_id": int,
            "offer_id": int,
            "batch": int,
            "note": str,
            "actor": str,  # dispatch | artisan:<id> | customer | admin:<name>
            "inbound_id": int,  # the message that caused it, when one did
        },
        pk="id",
        not_null={"request_id", "kind"},
    )
    db["dispatch_events"].create_index(["request_id", "id"])
    db.execute(
        "insert into request_dispatch (request_id, state, batch)"
        " select id, 'not_dispatched', 0 from service_requests where status = 'confirmed'"
    )


@MIGRATIONS()
def m303_staff_announcements(db: Database) -> None:
    """What the staff channel is told about requests (a new confirmed one, one nobody accepted), one row per
    fact under a unique key, so several processes announce each exactly once; the webhook delivery is claimed
    like admin alerts, the WhatsApp copy goes through the outbox."""
    db["staff_announcements"].create(
        {
            "id": int,
            "dedupe_key": str,  # <kind>:<request id>
            "request_id": int,
            "kind": str,  # new_request | no_artisan
            "text": str,
            "at": float,
            "webhook": str,  # pending | delivered | failed | none (no ALERT_WEBHOOK_URL when it was created)
            "attempts": int,
            "claimed_until": float,
            "delivered_at": float,
            "last_error": str,
        },
        pk="id",
        not_null={"dedupe_key", "webhook"},
        defaults={"attempts": 0},
    )
    db["staff_announcements"].create_index(["dedupe_key"], unique=True)
    db["staff_announcements"].create_index(["webhook"])


@MIGRATIONS()
def m304_outbound_templates(db: Database) -> None:
    """Outbound rows of the dispatch area: an approved WhatsApp template (Twilio ContentSid + ContentVariables)
    for an artisan whose 24-hour window is closed, and the request a message is about. ``body`` keeps the text
    the template renders to, for the record and for finding a send whose answer was lost."""
    db["outbound_messages"].add_column("content_sid", str)  # HX...; NULL: free text (body)
    db["outbound_messages"].add_column("content_variables", str)  # JSON object {"1": ..., "2": ...}
    db["outbound_messages"].add_column("request_id", int)
    db["outbound_messages"].create_index(["request_id"])


@MIGRATIONS()
def m305_outbound_trace(db: Database) -> None:
    """The request id of whatever produced an outbound message (a WhatsApp message's MessageSid, a chat request's
    generated id), so a reply is found from the same id as its log lines and its ``llm_calls`` rows.
    (``request_id`` there is the service request a dispatch message is about: another thing.)"""
    db["outbound_messages"].add_column("trace_id", str)
    db["outbound_messages"].create_index(["trace_id"])


@MIGRATIONS()
def m306_inbound_media(db: Database) -> None:
    """What became of each media item of an inbound message (``MediaUrl<index>``): fetched (its bytes stored under
    the data directory by sha256), or why not (too large, a type we do not take, unreachable, ...), and the
    transcript of a voice note. One row per message and index, so a message taken again is not fetched again."""
    db["inbound_media"].create(
        {
            "id": int,
            "inbound_id": int,
            "position": int,  # N of MediaUrlN
            "url": str,
            "declared_type": str,  # MediaContentTypeN as Twilio sent it
            "content_type": str,  # what the media server answered with, parameters dropped
            # fetched | too_large | refused_type | refused_host | unreachable | timeout
            "status": str,
            "sha256": str,  # of the bytes, also their file name under <database dir>/media/
            "bytes": int,
            "transcript": str,  # of a voice note: what a model heard in it
            "transcribed_by": str,  # the deployment that transcribed (or heard) it
            "error": str,
            "fetched_at": float,
        },
        pk="id",
        not_null={"inbound_id", "position", "status"},
    )
    db["inbound_media"].create_index(["inbound_id", "position"], unique=True)
    db["inbound_media"].create_index(["sha256"])
