"""The JSON contracts of the web API: every request body, query and response is a pydantic model here, and
the OpenAPI document at ``/api/openapi.json`` is generated from these models (``bot.contracts.openapi``),
so the document cannot say something the code does not do.

- ``RequestModel``: what a route accepts. ``parse`` validates a body or query and turns the first pydantic
  error into one sentence a client can act on (``ContractViolation``, answered as a 400).
- ``ResponseModel``: what a route answers. Closed (``additionalProperties: false``); dumped with
  ``exclude_unset``, so an ``omittable`` field (``session`` of a later chat turn) is left out unless set.
- ``Operation``: one route's contract (summary, auth, body, query, path, responses by status), attached to
  the Flask view with ``contract``; the document is built from the app's routes that carry one.

One module per area: ``errors`` (every error body), ``admin`` (``/api/llm/*``), ``chat`` (``/webhook/chat``,
``/api/ai-suggestions/generate``). Nothing here imports Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

# Where a field takes a provider name: the generator puts a reference to the ``ProviderName`` component here,
# an enum of this deployment's providers, so the document declares exactly the names the server accepts.
# (A marker, not the ``$ref`` itself: pydantic resolves every ``$ref`` among its own definitions.)
PROVIDER_NAME: dict[str, Any] = {"x-provider-name": True}


class ContractViolation(ValueError):
    """A request that does not fit its model; the message is the 400's ``detail``, naming the field."""


class RequestModel(BaseModel):
    """A request's shape. Strict: JSON's types are taken as they are (``42`` is not a string)."""

    model_config = ConfigDict(strict=True)
    # What the 400 says, by "field:error_type" or by error type; ``{field}``, ``{input}`` and the error's context
    # (``{max_length}``) are filled in. Other errors read "field: message" (a ``PydanticCustomError``'s own).
    PROBLEMS: ClassVar[Mapping[str, str]] = {}
    # How the 400 names an unknown key: "field" for a body, "query parameter" for a query.
    KEY_NOUN: ClassVar[str] = "field"

    @classmethod
    def parse(cls, data: object, context: Mapping[str, Any] | None = None) -> Self:
        try:
            return cls.model_validate(data, context=dict(context or {}))
        except ValidationError as exc:
            raise ContractViolation(cls.problem(exc.errors(include_url=False)[0])) from None

    @classmethod
    def problem(cls, error: ErrorDetails) -> str:
        name = ".".join(str(part) for part in error["loc"])
        if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
            return "the body must be a JSON object"
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(cls.model_fields))
            return f"unknown {cls.KEY_NOUN} {name[:40]!r}; allowed: {allowed}"
        template = cls.PROBLEMS.get(f"{name}:{error['type']}") or cls.PROBLEMS.get(error["type"])
        if template is None:
            return error["msg"] if not name else f"{name}: {error['msg']}"
        return template.format(**{**error.get("ctx", {}), "field": name, "input": repr(str(error["input"])[:40])})


class ResponseModel(BaseModel):
    """A response's shape: closed, so the document says every key a client can get."""

    model_config = ConfigDict(extra="forbid")

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(**kwargs: Any) -> Any:
    """A field that may be left out but is never null: a query parameter, or a response key present only when
    set (responses are dumped with ``exclude_unset``)."""
    return Field(default=None, json_schema_extra=_no_default, **kwargs)


@dataclass(frozen=True)
class Reply:
    """One documented response: its body model, what it means, whether it carries ``Retry-After``, and its media
    type (JSON but for exports such as ``/api/requests.csv``, whose model is then a ``RootModel[str]``)."""

    model: type[BaseModel]
    description: str
    retry_after: bool = False
    media_type: str = "application/json"


@dataclass(frozen=True)
class Operation:
    """The contract of one route: what it takes and what it answers, by status."""

    summary: str
    tags: tuple[str, ...]
    responses: Mapping[int, Reply]
    body: type[RequestModel] | None = None
    body_required: bool = False
    query: type[RequestModel] | None = None
    path: type[RequestModel] | None = None
    admin: bool = False  # bearer token (401 and 403 are added by the generator)


View = TypeVar("View", bound=Callable[..., Any])
CONTRACT_ATTRIBUTE = "contract"


def contract(operation: Operation) -> Callable[[View], View]:
    """Attach ``operation`` to a view (put it right under the route decorator): the document lists it."""

    def attach(view: View) -> View:
        setattr(view, CONTRACT_ATTRIBUTE, operation)
        return view

    return attach


def contract_of(view: Callable[..., Any]) -> Operation | None:
    return getattr(view, CONTRACT_ATTRIBUTE, None)
