"""One dispatch process for the multi-process tests: it builds the dispatch domain on the database given (its
messages go to the emulated Twilio at the URL given), says ``ready``, waits for ``go`` on stdin so that several
processes act in the same instant, acts once and prints the outcome as JSON.

    python -m tests.dispatch.dispatch_process DB TWILIO_BASE start REQUEST_ID
    python -m tests.dispatch.dispatch_process DB TWILIO_BASE answer INBOUND_ID
"""

from __future__ import annotations

import json
import sys

from bot.dispatch import Dispatch, DispatchSettings
from bot.inbound import InboundMessage
from bot.messaging.outbox import Outbox
from bot.messaging.sender import SendPolicy, WhatsAppSender
from bot.messaging.twilio_gateway import TwilioGateway
from bot.store import Store
from tests.dispatch.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, GRACE_S, STAFF


def main(database: str, twilio_base: str, action: str, argument: str) -> None:
    store = Store(database)
    outbox = Outbox(store)
    gateway = TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, api_base=twilio_base, timeout_s=5)
    sender = WhatsAppSender(outbox, gateway, None, SendPolicy(in_flight_grace_s=GRACE_S))
    dispatch = Dispatch(store, outbox, sender, DispatchSettings(batch_size=3, staff_whatsapp=STAFF))
    message = None
    if action == "answer":
        customer_id, body, from_number = store.db.execute(
            "select customer_id, body, from_number from inbound_messages where id = ?", [int(argument)]
        ).fetchone()
        message = InboundMessage(
            message_sid=f"x{argument}", customer_id=customer_id, body=body, from_number=from_number
        )
    print("ready", flush=True)
    sys.stdin.readline()
    if action == "start":
        result = {"state": dispatch.start(int(argument))}
    else:
        assert message is not None
        reply = dispatch.handle_artisan_message(int(argument), message)
        result = {"outcome": reply.outcome, "settled": reply.delivery.settled}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
