"""The OpenAPI 3.1 description of the admin and chat routes, served at ``/api/openapi.json``.

Written by hand as data: it is the contract the dashboard, scripts and the schemathesis test rely on,
so a route change that forgets it fails that test. Chat routes are tagged ``chat``; the admin ones
``admin`` (auth) and ``public``.
"""

from __future__ import annotations

from typing import Any

PROVIDER_NAME = {"type": "string", "description": "a deployment name from router_config, e.g. claude"}
ACTOR = {
    "type": "string",
    "pattern": "^[A-Za-z0-9._@-]{1,40}$",
    "description": "who acts, recorded in provider_events as admin:<by> (default: api)",
}
NULLABLE_NUMBER = {"type": ["number", "null"]}
EPOCH = {"type": ["number", "null"], "description": "Unix time in seconds"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, **_json({"$ref": "#/components/schemas/Error"})}


ADMIN_ERRORS = {
    "401": _error("missing or wrong bearer token"),
    "403": _error("ADMIN_API_TOKEN is not configured: the admin API is disabled"),
}


def _admin(operation: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": ["admin"],
        "security": [{"bearerAuth": []}],
        **operation,
        "responses": {**operation["responses"], **ADMIN_ERRORS},
    }


def _optional_body(properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON object body whose fields are all optional (an empty body means the defaults)."""
    return {"required": False, **_json({"type": "object", "properties": properties, "additionalProperties": False})}


PROVIDER_STATE = {
    "type": "object",
    "properties": {
        "provider": {"type": "string"},
        "state": {"type": "string", "enum": ["healthy", "degraded", "cooling_down", "benched", "disabled"]},
        "reason": {"type": ["string", "null"]},
    },
    "required": ["provider", "state"],
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        "required": ["error", "detail"],
    },
    "ProviderStatus": {
        "type": "object",
        "properties": {
            "provider": {"type": "string"},
            "model": {"type": "string"},
            "order": {"type": "integer"},
            "state": PROVIDER_STATE["properties"]["state"],
            "usable": {"type": "boolean"},
            "reason": {"type": ["string", "null"]},
            "error_kind": {"type": ["string", "null"]},
            "advice": {"type": ["string", "null"]},
            "since": EPOCH,
            "until": {**EPOCH, "description": "end of the cooldown (cooling_down only)"},
            "next_probe_at": {**EPOCH, "description": "next scheduled self-test that will probe it"},
            "consecutive_failures": {"type": "integer"},
            "last_success_at": EPOCH,
            "last_failure_at": EPOCH,
            "last_hour": {
                "type": "object",
                "properties": {
                    "requests": {"type": "integer"},
                    "successes": {"type": "integer"},
                    "failures": {"type": "integer"},
                    "success_rate": NULLABLE_NUMBER,
                    "latency_ms": {
                        "type": "object",
                        "properties": {"p50": NULLABLE_NUMBER, "p95": NULLABLE_NUMBER},
                    },
                },
            },
        },
        "required": ["provider", "state", "usable", "consecutive_failures", "last_hour"],
    },
    "Stats": {
        "type": "object",
        "properties": {
            "requests": {"type": "integer", "description": "calls made to the provider (attempts)"},
            "successes": {"type": "integer"},
            "failures": {"type": "integer"},
            "failures_by_kind": {"type": "object", "additionalProperties": {"type": "integer"}},
            "success_rate": NULLABLE_NUMBER,
            "latency_ms": {
                "type": "object",
                "properties": {"p50": NULLABLE_NUMBER, "p95": NULLABLE_NUMBER, "p99": NULLABLE_NUMBER},
            },
            "input_tokens": {"type": "integer"},
            "output_tokens": {"type": "integer"},
            "cost_usd": {"type": "number"},
            "attempt_share": NULLABLE_NUMBER,
            "load_share": {**NULLABLE_NUMBER, "description": "share of answered requests this provider served"},
            "fallback_rate": {**NULLABLE_NUMBER, "description": "share of its answers given as a fallback"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/llm/health": {
        "get": {
            "tags": ["public"],
            "summary": "200 while at least one provider can take requests, 503 when none can",
            "responses": {
                "200": {"description": "some provider is usable", **_json({"$ref": "#/components/schemas/Health"})},
                "503": {"description": "no provider is usable", **_json({"$ref": "#/components/schemas/Health"})},
            },
        }
    },
    "/api/llm/status": {
        "get": _admin(
            {
                "summary": "Per provider state, reason, times, last-hour success rate and latency; next provider",
                "responses": {
                    "200": {
                        "description": "status",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "generated_at": {"type": "number"},
                                    "next_provider": {"type": ["string", "null"]},
                                    "usable_providers": {"type": "integer"},
                                    "providers": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/ProviderStatus"},
                                    },
                                    "probes_today": {"type": "object"},
                                    "scheduler": {"type": "object"},
                                },
                                "required": ["next_provider", "providers"],
                            }
                        ),
                    }
                },
            }
        )
    },
    "/api/llm/test": {
        "post": _admin(
            {
                "summary": "Probe one provider (or all not disabled) now with a tiny prompt (max_tokens 5)",
                "requestBody": _optional_body({"provider": PROVIDER_NAME, "by": ACTOR}),
                "responses": {
                    "200": {
                        "description": "probe results",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "results": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "provider": {"type": "string"},
                                                "outcome": {"type": "string", "enum": ["success", "failure"]},
                                                "error_kind": {"type": ["string", "null"]},
                                                "latency_ms": {"type": "number"},
                                                "model": {"type": "string"},
                                                "http_status": {"type": ["integer", "null"]},
                                                "state": {"type": "string"},
                                            },
                                        },
                                    }
                                },
                            }
                        ),
                    },
                    "400": _error("bad body or unknown provider"),
                },
            }
        )
    },
    "/api/llm/analytics": {
        "get": _admin(
            {
                "summary": "Per provider and purpose: counts, error kinds, latency percentiles, tokens, cost, load",
                "parameters": [
                    {
                        "name": "since",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "Unix seconds or ISO 8601 (default: until - 24 h)",
                    },
                    {
                        "name": "until",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "Unix seconds or ISO 8601 (default: now)",
                    },
                    {
                        "name": "bucket",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["minute", "hour", "day"], "default": "hour"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "analytics",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "since": {"type": "number"},
                                    "until": {"type": "number"},
                                    "bucket": {"type": "string"},
                                    "totals": {"type": "object"},
                                    "providers": {
                                        "type": "array",
                                        "items": {
                                            "allOf": [{"$ref": "#/components/schemas/Stats"}],
                                            "properties": {
                                                "provider": {"type": "string"},
                                                "benched_seconds": {"type": "number"},
                                                "seconds_by_state": {"type": "object"},
                                                "purposes": {"type": "array"},
                                            },
                                        },
                                    },
                                    "series": {"type": "array"},
                                    "selftest_by_day": {"type": "array"},
                                },
                            }
                        ),
                    },
                    "400": _error("bad since, until, bucket or an unknown parameter"),
                },
            }
        )
    },
    "/api/llm/reset-failures": {
        "post": _admin(
            {
                "summary": "Clear benched/cooling state of one provider (or all); disabled ones stay disabled",
                "requestBody": _optional_body({"provider": PROVIDER_NAME, "by": ACTOR}),
                "responses": {
                    "200": {
                        "description": "providers after the reset",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "reset": {"type": "array", "items": {"type": "string"}},
                                    "actor": {"type": "string"},
                                    "providers": {"type": "array", "items": PROVIDER_STATE},
                                },
                            }
                        ),
                    },
                    "400": _error("bad body or unknown provider"),
                },
            }
        )
    },
    "/api/llm/providers/{name}/{action}": {
        "post": _admin(
            {
                "summary": "Disable a provider by hand (no traffic, no probes) or enable it again",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": PROVIDER_NAME},
                    {
                        "name": "action",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["enable", "disable"]},
                    },
                ],
                "requestBody": _optional_body({"by": ACTOR}),
                "responses": {
                    "200": {
                        "description": "the provider after the change",
                        **_json(
                            {"type": "object", "properties": {"providers": {"type": "array", "items": PROVIDER_STATE}}}
                        ),
                    },
                    "400": _error("bad body"),
                    "404": _error("unknown provider or action"),
                },
            }
        )
    },
    "/api/llm/providers": {
        "get": _admin(
            {
                "summary": "Configured providers in priority order: models, base URLs, keys masked",
                "responses": {
                    "200": {
                        "description": "providers",
                        **_json(
                            {
                                "type": "object",
                                "properties": {
                                    "providers": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "provider": {"type": "string"},
                                                "family": {"type": "string"},
                                                "model": {"type": "string"},
                                                "order": {"type": "integer"},
                                                "api_base": {"type": ["string", "null"]},
                                                "api_key": {"type": ["string", "null"], "description": "***last4"},
                                                "state": {"type": "string"},
                                            },
                                        },
                                    },
                                    "left_out": {"type": "object", "additionalProperties": {"type": "string"}},
                                },
                            }
                        ),
                    }
                },
            }
        )
    },
}

LANGUAGE = {"type": "string", "enum": ["fr", "en", "pcm"]}
CHAT_MESSAGE = {"type": "string", "minLength": 1, "maxLength": 4096, "description": "what the customer writes"}
CHAT_SESSION = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "description": "the token the first answer of POST /webhook/chat returned: the only key to a conversation",
}
CHAT_USER = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "description": "a display label chosen by the client; it names no conversation",
}
CHAT_REFUSAL = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "detail": {"type": "string"},
        "reason": {
            "type": "string",
            "enum": ["busy", "session_rate", "ip_rate", "daily_budget", "store_unavailable"],
        },
    },
    "required": ["error", "detail", "reason"],
    "additionalProperties": False,
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before asking again",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
# Refused before any model is asked (bot.web.limits); a store failure later in the request is a 503 too.
CHAT_REFUSALS = {
    "401": _error("'session' is not a token this server issued (nothing was read, no model was asked)"),
    "429": {
        "description": "too many requests this minute from this chat session (session_rate) or this client "
        "address (ip_rate), or the daily LLM budget is spent (daily_budget)",
        "headers": RETRY_AFTER,
        **_json(CHAT_REFUSAL),
    },
    "503": {
        "description": "every model slot of this server is taken (busy), or the database cannot take a write "
        "(store_unavailable)",
        "headers": RETRY_AFTER,
        **_json(CHAT_REFUSAL),
    },
}

CHAT_PATHS: dict[str, Any] = {
    "/webhook/chat": {
        "post": {
            "tags": ["chat"],
            "summary": "One customer message in, the assistant's reply out (JSON channel for tests and web chat). "
            "The first turn (no session) starts a conversation and returns its session token once; later turns "
            "send it back",
            "requestBody": {
                "required": True,
                **_json(
                    {
                        "type": "object",
                        "properties": {"message": CHAT_MESSAGE, "session": CHAT_SESSION, "user": CHAT_USER},
                        "required": ["message"],
                    }
                ),
            },
            "responses": {
                "200": {
                    "description": "the reply",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "reply": {"type": "string"},
                                "provider": {"type": ["string", "null"]},
                                "conversation_id": {"type": ["integer", "null"]},
                                "language": LANGUAGE,
                                "holding": {"type": "boolean"},
                                "request": {
                                    "type": ["object", "null"],
                                    "properties": {
                                        "service_type": {"type": "string"},
                                        "location": {"type": "string"},
                                        "description": {"type": "string"},
                                        "urgency": {"type": "string"},
                                        "status": {"type": "string"},
                                    },
                                    "additionalProperties": False,
                                },
                                "session": {
                                    **CHAT_SESSION,
                                    "description": "first turn only: the token to send with every later turn",
                                },
                            },
                            "required": ["reply", "provider", "conversation_id", "language", "holding", "request"],
                            "additionalProperties": False,
                        }
                    ),
                },
                "400": _error("bad body"),
                **CHAT_REFUSALS,
            },
        }
    },
    "/api/ai-suggestions/generate": {
        "post": {
            "tags": ["chat"],
            "summary": "Three short reply suggestions for a chat session's conversation and/or for one message",
            "requestBody": {
                "required": True,
                **_json(
                    {
                        "type": "object",
                        "properties": {"session": CHAT_SESSION, "message": CHAT_MESSAGE, "user": CHAT_USER},
                        "anyOf": [{"required": ["session"]}, {"required": ["message"]}],
                    }
                ),
            },
            "responses": {
                "200": {
                    "description": "suggestions",
                    **_json(
                        {
                            "type": "object",
                            "properties": {
                                "suggestions": {
                                    "type": "array",
                                    "items": {"type": "string", "maxLength": 50},
                                    "minItems": 3,
                                    "maxItems": 3,
                                },
                                "fallback": {"type": "boolean"},
                                "language": LANGUAGE,
                                "provider": {"type": ["string", "null"]},
                                "conversation_id": {
                                    "type": ["integer", "null"],
                                    "description": "the session's conversation; null without a session",
                                },
                            },
                            "required": ["suggestions", "fallback", "language", "provider", "conversation_id"],
                            "additionalProperties": False,
                        }
                    ),
                },
                "400": _error("bad body"),
                **CHAT_REFUSALS,
            },
        }
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Djobea AI",
            "version": "1.0.0",
            "description": "Admin API of the LLM providers (bearer token) and the chat routes.",
        },
        "paths": {**PATHS, **CHAT_PATHS},
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                **SCHEMAS,
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "unavailable"]},
                        "usable_providers": {"type": "integer"},
                        "providers": {"type": "integer"},
                    },
                    "required": ["status", "usable_providers", "providers"],
                },
            },
        },
    }
