"""The contracts of the staff API of dispatch: ``/api/requests`` and ``/api/artisans`` (``bot.web.dispatch_api``).

Bodies and queries are checked by the domain (``bot.dispatch``: an ``InvalidInput`` is a 400 naming the field);
the models here declare what it accepts, a little more narrowly where the domain is lenient (a trade or a
quartier by its canonical name; the domain also takes other spellings). Quartiers are the names of the default
table (``bot/dispatch/quartiers.yaml``); a deployment with DISPATCH_QUARTIERS_FILE accepts its own. One rule
JSON Schema cannot state: ``since`` must be before ``until``. Responses are closed. Times are Unix seconds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, RootModel, WithJsonSchema

from bot.contracts import Operation, Reply, RequestModel, ResponseModel, omittable
from bot.contracts.errors import TOO_LARGE, ErrorBody, error
from bot.dispatch.directory import NAME_MAX_CHARS, TRADES
from bot.dispatch.quartiers import QuartierTable
from bot.dispatch.request_book import MAX_LIMIT, STATUSES

RequestStatus = Literal[
    "collecting", "awaiting_confirmation", "confirmed", "assigned", "in_progress", "done", "cancelled"
]
Epoch = Annotated[float | None, Field(description="Unix time in seconds")]
Trade = Annotated[str, WithJsonSchema({"type": "string", "enum": list(TRADES)})]
Quartier = Annotated[str, WithJsonSchema({"type": "string", "enum": list(QuartierTable.load().names)})]
ID_MAX = 2**63 - 1  # SQLite's integers
_STATUS = "|".join(STATUSES)


# --- requests ---------------------------------------------------------------------------------------------


class RequestFilters(RequestModel):
    """Filters of ``GET /api/requests.csv``, and of ``GET /api/requests`` with its paging."""

    status: str = omittable(
        pattern=f"^({_STATUS})(,({_STATUS}))*$", description="one status or several, comma-separated"
    )
    service_type: Trade = omittable()
    quartier: Quartier = omittable(description="a quartier of Douala (the domain also reads other spellings)")
    since: float = omittable(description="created at or after, Unix seconds (an ISO 8601 date is read too)")
    until: float = omittable(description="created before, Unix seconds; after since")


class RequestsQuery(RequestFilters):
    """``GET /api/requests``: the filters, and a page of them."""

    cursor: str = omittable(pattern=r"^[0-9]{1,18}$", description="the 'next' of the previous page")
    limit: int = omittable(ge=1, le=MAX_LIMIT, description="default 50")


class AssignedArtisan(ResponseModel):
    id: int
    name: str
    whatsapp: str
    active: bool


class RequestSummary(ResponseModel):
    id: int
    status: RequestStatus
    service_type: str | None
    quartier: str | None = Field(description="the quartier found when dispatch started")
    location: str | None
    description: str | None
    urgency: str | None
    language: str | None
    customer: str = Field(description="the customer's WhatsApp number, or chat:<id> for the web chat")
    created_at: Epoch
    updated_at: Epoch
    confirmed_at: Epoch
    assigned_at: Epoch
    status_at: Epoch
    dispatch_state: Literal["offering", "exhausted", "assigned", "manual", "cancelled", "closed"] | None
    artisan: AssignedArtisan | None


class RequestPage(ResponseModel):
    requests: list[RequestSummary] = Field(description="newest first")
    next: str | None = Field(description="cursor of the next page; null on the last")


class DispatchProgress(ResponseModel):
    state: str
    quartier: str | None
    batch: int | None
    deadline: Epoch


class Offer(ResponseModel):
    id: int
    artisan_id: int
    artisan_name: str
    artisan_whatsapp: str
    batch: int
    status: str = Field(description="offered, accepted, declined, taken, withdrawn, undeliverable, skipped")
    template: bool = Field(description="sent as the approved template (24-hour window closed)")
    offered_at: Epoch
    answered_at: Epoch
    answer: str | None


class DispatchEvent(ResponseModel):
    id: int
    at: float
    kind: str
    from_status: str | None
    to_status: str | None
    artisan_id: int | None
    offer_id: int | None
    batch: int | None
    note: str | None
    actor: str | None
    inbound_id: int | None


class ConversationMessage(ResponseModel):
    role: str
    content: str
    at: float
    kind: str | None
    inbound_id: int | None


class SentMessage(ResponseModel):
    id: int
    to_number: str
    kind: str
    text: str = Field(alias="body", description="the text sent (a template's: the text it renders to)")
    status: str
    content_sid: str | None
    error_code: int | None
    error_reason: str | None
    created_at: Epoch
    sent_at: Epoch


class Announcement(ResponseModel):
    kind: str
    text: str
    at: float
    webhook: str | None


class RequestDetail(RequestSummary):
    media: str | None = Field(description="JSON list of the customer's media")
    latitude: float | None
    longitude: float | None
    dispatch: DispatchProgress | None
    offers: list[Offer]
    events: list[DispatchEvent]
    conversation: list[ConversationMessage]
    messages: list[SentMessage] = Field(description="every WhatsApp message sent about the request")
    announcements: list[Announcement] = Field(description="what staff were told")


def _assigned_needs_an_artisan(schema: dict[str, Any]) -> None:
    schema["if"] = {"properties": {"status": {"const": "assigned"}}, "required": ["status"]}
    schema["then"] = {"required": ["artisan_id"]}


class StatusChange(RequestModel):
    model_config = ConfigDict(strict=True, extra="forbid", json_schema_extra=_assigned_needs_an_artisan)

    status: Literal["assigned", "in_progress", "done", "cancelled"]
    note: str = omittable(max_length=500)
    by: str = omittable(pattern=r"^[A-Za-z0-9._@-]{1,40}$", description="recorded as admin:<by> (default api)")
    artisan_id: int = omittable(ge=0, le=ID_MAX, description="required for assigned (assign by hand, or reassign)")


class StatusChanged(ResponseModel):
    request: RequestDetail


class TransitionRefused(ErrorBody):
    """A status change the request's current status does not allow; ``detail`` says why."""

    current: str = omittable()
    target: str = omittable()


class FieldRefused(ErrorBody):
    field: str = Field(description="the field or parameter that is wrong")


# --- artisans ---------------------------------------------------------------------------------------------


# Not blank: some character that neither Python's str.strip() nor JSON Schema's \s counts as a space.
NOT_BLANK = r"[^\s\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
Name = Annotated[str, Field(pattern=NOT_BLANK, max_length=NAME_MAX_CHARS)]
WhatsAppNumber = Annotated[str, Field(pattern=r"^\+[0-9]{8,15}$", description="+ and 8 to 15 digits (+237...)")]
Trades = Annotated[list[Trade], Field(min_length=1)]
Quartiers = Annotated[list[Quartier], Field(description="quartiers served; empty: the whole city")]


class ArtisanBody(RequestModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name
    whatsapp: WhatsAppNumber
    trades: Trades
    quartiers: Quartiers = omittable()
    active: bool = omittable()


class ArtisanChange(RequestModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name = omittable()
    whatsapp: WhatsAppNumber = omittable()
    trades: Trades = omittable()
    quartiers: Quartiers = omittable()
    active: bool = omittable()


class ArtisanPath(RequestModel):
    artisan_id: int = Field(ge=0, le=ID_MAX)


class RequestPath(RequestModel):
    request_id: int = Field(ge=0, le=ID_MAX)


class ArtisansQuery(RequestModel):
    active: Literal["true", "false"] = omittable()
    trade: Trade = omittable()
    quartier: Quartier = omittable()


class ArtisanRecord(ResponseModel):
    id: int
    name: str
    whatsapp: str
    trades: list[str]
    quartiers: list[str] = Field(description="empty: the whole city")
    active: bool
    created_at: float
    updated_at: float
    paused_at: Epoch
    last_offered_at: Epoch


class ArtisanList(ResponseModel):
    artisans: list[ArtisanRecord]


# --- operations -------------------------------------------------------------------------------------------

BAD_FIELD = {400: Reply(FieldRefused, "a bad body, field or filter; ``field`` names it")}
NOT_FOUND = {404: error("no such request or artisan")}

LIST_REQUESTS = Operation(
    summary="Service requests, newest first, filtered and paginated; each with its artisan (or null)",
    tags=("dispatch",),
    admin=True,
    query=RequestsQuery,
    responses={200: Reply(RequestPage, "one page"), **BAD_FIELD},
)


class RequestsCsv(RootModel[str]):
    """The requests of a ``GET /api/requests`` query as a spreadsheet (UTF-8 CSV with a header row): id,
    created_at, status, service_type, quartier, location, description, urgency, language, customer, artisan_id,
    artisan_name, artisan_whatsapp, confirmed_at, assigned_at, status_at, dispatch_state; times ISO 8601 UTC."""


REQUESTS_CSV = Operation(
    summary="The requests the same filters select, as CSV for a spreadsheet",
    tags=("dispatch",),
    admin=True,
    query=RequestFilters,
    responses={200: Reply(RequestsCsv, "the CSV export", media_type="text/csv"), **BAD_FIELD},
)
GET_REQUEST = Operation(
    path=RequestPath,
    summary="One request whole: fields, artisan, dispatch, offers, events, conversation, messages",
    tags=("dispatch",),
    admin=True,
    responses={200: Reply(RequestDetail, "the request"), **NOT_FOUND},
)
CHANGE_STATUS = Operation(
    path=RequestPath,
    summary="Move a request to assigned (artisan_id), in_progress, done or cancelled; 409 says why not",
    tags=("dispatch",),
    admin=True,
    body=StatusChange,
    body_required=True,
    responses={
        200: Reply(StatusChanged, "changed; the people concerned are told"),
        **BAD_FIELD,
        **NOT_FOUND,
        409: Reply(TransitionRefused, "not allowed from the current status"),
        **TOO_LARGE,
    },
)
CREATE_ARTISAN = Operation(
    summary="Add an artisan to the directory",
    tags=("dispatch",),
    admin=True,
    body=ArtisanBody,
    body_required=True,
    responses={
        201: Reply(ArtisanRecord, "added"),
        **BAD_FIELD,
        409: error("an artisan already has this WhatsApp number"),
        **TOO_LARGE,
    },
)
LIST_ARTISANS = Operation(
    summary="The artisan directory",
    tags=("dispatch",),
    admin=True,
    query=ArtisansQuery,
    responses={200: Reply(ArtisanList, "artisans"), **BAD_FIELD},
)
GET_ARTISAN = Operation(
    path=ArtisanPath,
    summary="One artisan",
    tags=("dispatch",),
    admin=True,
    responses={200: Reply(ArtisanRecord, "the artisan"), **NOT_FOUND},
)
UPDATE_ARTISAN = Operation(
    path=ArtisanPath,
    summary="Change an artisan (any of name, whatsapp, trades, quartiers, active)",
    tags=("dispatch",),
    admin=True,
    body=ArtisanChange,
    responses={
        200: Reply(ArtisanRecord, "changed"),
        **BAD_FIELD,
        **NOT_FOUND,
        409: error("another artisan has this WhatsApp number"),
        **TOO_LARGE,
    },
)
PAUSE_ARTISAN = Operation(
    path=ArtisanPath,
    summary="Pause an artisan: no more offers; history kept",
    tags=("dispatch",),
    admin=True,
    responses={200: Reply(ArtisanRecord, "paused"), **NOT_FOUND},
)
