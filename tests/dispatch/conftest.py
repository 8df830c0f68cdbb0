"""Fixtures of the dispatch tests: the dispatch domain on a fresh store, its messages sent through the real
outbox and WhatsApp sender to the session's emulated Twilio, on a fake clock (timeouts without waiting)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.conversation.history import ConversationHistory, RequestDraft
from bot.dispatch import Dispatch, DispatchSettings
from bot.dispatch.dispatcher import ArtisanReply
from bot.inbound import InboundMessage, InboundQueue
from bot.messaging.outbox import Outbox
from bot.messaging.sender import SendPolicy, WhatsAppSender
from bot.messaging.twilio_gateway import TwilioGateway
from bot.sandbox import ProviderEmulator
from bot.services import Services
from bot.store import Store
from bot.web import services_of
from tests.support import FakeClock, Harness, harnesses

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "twilio-test-auth-token-5678"
BOT_NUMBER = "+14155238886"
CUSTOMER = "+237699000001"
STAFF = "+237655000000"
OFFER_SID = "HX" + "a" * 32
GRACE_S = 30.0  # in-flight grace of the senders (a lost answer is looked up at Twilio after this)


@dataclass
class World:
    """The dispatch domain of one process, plus helpers to play customers and artisans."""

    store: Store
    dispatch: Dispatch
    emulator: ProviderEmulator
    clock: FakeClock
    sleeps: list[float] = field(default_factory=list)

    # --- setting the scene --------------------------------------------------------------------------------

    def artisan(self, name: str, number: str, trades: Any = ("plomberie",), quartiers: Any = (), window: bool = True):
        """An artisan of the directory; ``window``: they wrote to us recently (free text can reach them)."""
        artisan = self.dispatch.directory.create(name, number, list(trades), list(quartiers))
        if window:
            self.write_from(number, "Bonjour")
        return artisan

    def write_from(self, number: str, body: str, **form: str) -> tuple[int, InboundMessage]:
        """A WhatsApp message from ``number`` stored in the inbound queue, as the webhook stores it."""
        message = InboundMessage(
            message_sid=f"SM{uuid.uuid4().hex}",
            customer_id=number,
            body=body,
            from_number=f"whatsapp:{number}",
            to_number=f"whatsapp:{BOT_NUMBER}",
            form={"Body": body, **form},
        )
        inbound_id, _ = InboundQueue(self.store, self.clock).enqueue(message)
        return inbound_id, message

    def confirmed_request(
        self,
        customer: str = CUSTOMER,
        service_type: str = "plomberie",
        location: str = "Akwa",
        description: str = "fuite d'eau sous l'évier",
        urgency: str = "urgent",
        language: str = "fr",
        status: str = "confirmed",
    ) -> int:
        """A request stored as the conversation engine stores it when the customer confirms."""
        history = ConversationHistory(self.store, self.clock)
        conversation = history.ensure(customer, "whatsapp" if customer.startswith("+") else "chat")
        draft = RequestDraft(
            status=status, service_type=service_type, location=location, description=description, urgency=urgency
        )
        with self.store.immediate() as db:
            return history.save_request(db, conversation.id, customer, draft, language)

    # --- playing ------------------------------------------------------------------------------------------

    def answer(self, number: str, body: str, **form: str) -> ArtisanReply:
        inbound_id, message = self.write_from(number, body, **form)
        return self.dispatch.handle_artisan_message(inbound_id, message)

    # --- observing ----------------------------------------------------------------------------------------

    def sent(self, to: str) -> list[str]:
        """Bodies the emulated Twilio accepted for ``to``, oldest first."""
        return [m["body"] for m in self.emulator.twilio.messages(f"whatsapp:{to}")]

    def request(self, request_id: int) -> dict:
        return next(iter(self.store.db.query("select * from service_requests where id = ?", [request_id])))

    def dispatch_state(self, request_id: int) -> dict:
        return next(iter(self.store.db.query("select * from request_dispatch where request_id = ?", [request_id])))

    def offers(self, request_id: int) -> list[dict]:
        return list(self.store.db.query("select * from dispatch_offers where request_id = ? order by id", [request_id]))

    def offer_statuses(self, request_id: int) -> dict[str, str]:
        names = {a.id: a.name for a in self.dispatch.directory.list()}
        return {names[o["artisan_id"]]: o["status"] for o in self.offers(request_id)}

    def events(self, request_id: int) -> list[str]:
        return [
            row[0]
            for row in self.store.db.execute(
                "select kind from dispatch_events where request_id = ? order by id", [request_id]
            )
        ]


def gateway_for(emulator: ProviderEmulator) -> TwilioGateway:
    return TwilioGateway(ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, api_base=emulator.base_url, timeout_s=5)


@pytest.fixture
def make_world(emulator: ProviderEmulator, tmp_path: Path) -> Callable[..., World]:
    """A ``World`` on this test's database (the same one on every call, like another process); keyword
    arguments are DispatchSettings fields."""
    clock = FakeClock()
    emulator.twilio.set_credentials(ACCOUNT_SID, AUTH_TOKEN)
    emulator.twilio.set_clock(clock)

    def make(gateway: TwilioGateway | None | str = "emulator", **settings: Any) -> World:
        store = Store(tmp_path / "bot.db")
        sleeps: list[float] = []
        outbox = Outbox(store, clock)
        twilio = gateway_for(emulator) if gateway == "emulator" else gateway
        sender = WhatsAppSender(outbox, twilio, None, SendPolicy(in_flight_grace_s=GRACE_S), clock, sleeps.append)  # type: ignore[arg-type]
        dispatch = Dispatch(store, outbox, sender, DispatchSettings(**settings), clock=clock)
        return World(store, dispatch, emulator, clock, sleeps)

    return make


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


# --- the whole site: signed webhook, queue, worker, dispatch, emulated providers and Twilio --------------------

ADMIN_TOKEN = "dispatch-e2e-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Site:
    """The app as deployed (``create_app``), driven through the Twilio-signed webhook and the staff API."""

    harness: Harness

    @property
    def services(self) -> Services:
        return services_of(self.harness.app)

    @property
    def clock(self) -> FakeClock:
        return self.harness.clock

    def say(self, number: str, text: str) -> None:
        """A WhatsApp message from ``number`` through the signed webhook, then the worker until nothing is due."""
        assert self.harness.whatsapp(text, customer=number).status_code == 200
        self.harness.drain()

    def sent(self, to: str) -> list[str]:
        return self.harness.sent(to)

    def add_artisan(self, name: str, number: str, trades: Any = ("plomberie",), quartiers: Any = ()) -> int:
        created = self.harness.client.post(
            "/api/artisans",
            json={"name": name, "whatsapp": number, "trades": list(trades), "quartiers": list(quartiers)},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.json
        return created.json["id"]

    def requests(self, **filters: str) -> list[dict]:
        page = self.harness.client.get("/api/requests", query_string=filters, headers=ADMIN)
        assert page.status_code == 200, page.json
        return page.json["requests"]

    def request(self, request_id: int) -> dict:
        return self.harness.client.get(f"/api/requests/{request_id}", headers=ADMIN).json

    def tick(self) -> Any:
        return self.services.dispatch.tick()


@pytest.fixture
def make_site(
    emulator: ProviderEmulator, provider_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., Site]]:
    """Build the app on this test's database (the same one on every call, like a restart); keyword arguments
    override environment values (DISPATCH_BATCH, DISPATCH_TIMEOUT_MIN, TWILIO_OFFER_CONTENT_SID, ...)."""
    clock = FakeClock()
    emulator.twilio.set_clock(clock)  # messages dated on the sender's clock, so lost answers can be looked up
    with harnesses(
        emulator, provider_env, tmp_path, clock, ADMIN_API_TOKEN=ADMIN_TOKEN, ADMIN_WHATSAPP_NUMBER=STAFF
    ) as make_harness:
        yield lambda **env: Site(make_harness(**env))


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()
