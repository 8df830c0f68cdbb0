"""What each provider's HTTP API really sends back: the one table of success bodies and fault responses.

The emulator (``bot.sandbox.emulator``) decides *when* to answer; this module decides *what* the answer is.
Everything here is a pure function from (provider, model, text, fault) to a ``ProviderResponse``, so the
bodies can be read, diffed against captured traffic and unit-tested without a server.

Fault kinds (``Fault``), and the shape each provider gives them::

    credit_exhausted   claude 400 invalid_request_error "credit balance is too low"
                       openai 429 insufficient_quota      gemini 429 RESOURCE_EXHAUSTED + QuotaFailure (per day)
    rate_limited       claude 429 rate_limit_error + retry-after
                       openai 429 rate_limit_exceeded + retry-after
                       gemini 429 RESOURCE_EXHAUSTED + QuotaFailure (per minute) + RetryInfo "Ns"
    auth_failed        claude 401 authentication_error    openai 401 invalid_api_key
                       gemini 400 INVALID_ARGUMENT + ErrorInfo API_KEY_INVALID
    server_error       claude 500 api_error               openai 500 server_error     gemini 500 INTERNAL
    overloaded         claude 529 overloaded_error        openai 503 server_error     gemini 503 UNAVAILABLE
    bad_request        400 invalid-request in each provider's shape
    context_too_long   claude 400 "prompt is too long"    openai 400 context_length_exceeded
                       gemini 400 "The input token count ... exceeds ..."
    content_policy     claude 400 "Output blocked by content filtering policy"
                       openai 400 content_policy_violation
                       gemini 200 with promptFeedback.blockReason SAFETY and no candidates
    bad_output_html    200 text/html page (a captive proxy or gateway answering instead of the API)
    bad_output_json    200 application/json whose body is truncated, invalid JSON
    empty_output       200 in the provider's success shape with an empty text
    hang, reset        transport faults: no payload, the emulator stalls or drops the connection

Media refused by an API (``media_refused_response``) are a 400 in its shape; what each API takes is in
``bot.sandbox.provider_media``. OpenAI's ``POST /v1/audio/transcriptions`` answers ``transcription_response`` (json,
verbose_json with the duration LiteLLM prices, text, srt, vtt) and takes the openai faults above.

Note that a real Gemini per-minute rate limit and a spent daily/billing quota carry the *same* message
("You exceeded your current quota, please check your plan and billing details..."); only the QuotaFailure
``quotaId`` and the presence of ``RetryInfo`` tell them apart. The emulator reproduces that on purpose.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

Provider = Literal["claude", "gemini", "openai"]
PROVIDERS: Final[tuple[str, ...]] = get_args(Provider)

Fault = Literal[
    "credit_exhausted",
    "rate_limited",
    "auth_failed",
    "server_error",
    "overloaded",
    "bad_request",
    "context_too_long",
    "content_policy",
    "bad_output_html",
    "bad_output_json",
    "empty_output",
    "hang",
    "reset",
]
FAULTS: Final[tuple[str, ...]] = get_args(Fault)

# Faults that are about the connection, not about a body: the server handles them itself.
TRANSPORT_FAULTS: Final[frozenset[str]] = frozenset({"hang", "reset"})

JSON_CONTENT_TYPE: Final = "application/json"
# Google's front end always names the charset; LiteLLM must cope with that too.
GEMINI_CONTENT_TYPE: Final = "application/json; charset=UTF-8"

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    """One HTTP answer, ready to write: status, headers (without Content-Length) and body bytes."""

    status: int
    headers: Headers
    body: bytes


def estimate_tokens(text: str) -> int:
    """Rough token count (4 characters a token), never zero for a non-empty text so cost is nonzero."""
    return len(text) // 4 + 1 if text else 0


def _json(
    status: int, payload: dict[str, Any], headers: Headers = (), content_type: str = JSON_CONTENT_TYPE
) -> ProviderResponse:
    return ProviderResponse(
        status=status,
        headers=(("Content-Type", content_type), *headers),
        body=json.dumps(payload, separators=(",", ":")).encode(),
    )


def _request_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


# --- success bodies ---------------------------------------------------------------------------------------

# Gemini 2.5 models think before answering unless told not to (thinkingBudget 0), and their thoughts count
# against maxOutputTokens: a small cap is used up by thinking and the answer comes back empty.
GEMINI_THINKING_TOKENS: Final = 256


def thinking_exhausts_output(provider: str, request: Any) -> bool:
    """True when real Gemini would spend the whole ``maxOutputTokens`` on thinking (see above)."""
    if provider != "gemini" or "2.5" not in request.model or request.max_tokens is None:
        return False
    config = request.body.get("generationConfig") or {}
    budget = (config.get("thinkingConfig") or {}).get("thinkingBudget")
    return budget != 0 and int(request.max_tokens) < GEMINI_THINKING_TOKENS


def gemini_thinking_exhausted_response(model: str, input_tokens: int) -> ProviderResponse:
    """What Gemini sends when thinking used the whole output budget: no text, finishReason MAX_TOKENS."""
    return _json(
        200,
        {
            "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
            "usageMetadata": {
                "promptTokenCount": input_tokens,
                "totalTokenCount": input_tokens + GEMINI_THINKING_TOKENS,
                "thoughtsTokenCount": GEMINI_THINKING_TOKENS,
            },
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:22],
        },
        content_type=GEMINI_CONTENT_TYPE,
    )


def success_response(
    provider: Provider,
    model: str,
    text: str,
    input_tokens: int,
    output_tokens: int,
    media_tokens: dict[str, int] | None = None,
) -> ProviderResponse:
    """The provider's 200 answer carrying ``text`` verbatim, with usage so LiteLLM computes a cost.

    ``input_tokens`` includes the media's; ``media_tokens`` splits them by kind (image, audio, document) into
    the per-modality fields Gemini and OpenAI report (LiteLLM prices audio tokens apart)."""
    media_tokens = media_tokens or {}
    if provider == "claude":
        return _json(
            200,
            {
                "id": _request_id("msg_01"),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": output_tokens,
                    "service_tier": "standard",
                },
            },
            (("request-id", _request_id("req_011")),),
        )
    if provider == "gemini":
        return _json(
            200,
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": input_tokens,
                    "candidatesTokenCount": output_tokens,
                    "totalTokenCount": input_tokens + output_tokens,
                    "promptTokensDetails": _gemini_modalities(input_tokens, media_tokens),
                },
                "modelVersion": model,
                "responseId": uuid.uuid4().hex[:22],
            },
            content_type=GEMINI_CONTENT_TYPE,
        )
    return _json(
        200,
        {
            "id": _request_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": media_tokens.get("audio", 0)},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        },
        (("x-request-id", _request_id("req_")), ("openai-processing-ms", "1")),
    )


def _gemini_modalities(input_tokens: int, media_tokens: dict[str, int]) -> list[dict[str, Any]]:
    modality = {"image": "IMAGE", "audio": "AUDIO", "document": "DOCUMENT"}
    details = [{"modality": "TEXT", "tokenCount": input_tokens - sum(media_tokens.values())}]
    return details + [{"modality": modality[kind], "tokenCount": n} for kind, n in sorted(media_tokens.items())]


def transcription_response(
    model: str, text: str, duration_s: float, language: str, response_format: str
) -> ProviderResponse:
    """OpenAI's answer to POST /v1/audio/transcriptions in the ``response_format`` asked for (json by default;
    LiteLLM asks whisper-1 for verbose_json, whose ``duration`` it prices by the second)."""
    if response_format == "text":
        return ProviderResponse(200, (("Content-Type", "text/plain; charset=utf-8"),), (text + "\n").encode())
    if response_format in ("srt", "vtt"):
        end = _timestamp(duration_s, "," if response_format == "srt" else ".")
        cue = f"1\n00:00:00{',' if response_format == 'srt' else '.'}000 --> {end}\n{text}\n"
        body = cue if response_format == "srt" else "WEBVTT\n\n" + cue
        return ProviderResponse(200, (("Content-Type", "text/plain; charset=utf-8"),), body.encode())
    headers = (("x-request-id", _request_id("req_")), ("openai-processing-ms", "1"))
    if response_format == "verbose_json":
        segment = {
            "id": 0, "seek": 0, "start": 0.0, "end": duration_s, "text": " " + text, "tokens": [],
            "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.2, "no_speech_prob": 0.01,
        }  # fmt: skip
        payload = {"task": "transcribe", "language": language, "duration": duration_s, "text": text,
                   "segments": [segment], "usage": {"type": "duration", "seconds": math.ceil(duration_s)}}  # fmt: skip
        return _json(200, payload, headers)
    if model.startswith("whisper"):
        return _json(200, {"text": text, "usage": {"type": "duration", "seconds": math.ceil(duration_s)}}, headers)
    tokens, output = max(1, math.ceil(duration_s * 10)), estimate_tokens(text)
    usage = {
        "type": "tokens",
        "input_tokens": tokens,
        "output_tokens": output,
        "total_tokens": tokens + output,
        "input_token_details": {"audio_tokens": tokens, "text_tokens": 0},
    }
    return _json(200, {"text": text, "usage": usage}, headers)


def _timestamp(seconds: float, separator: str) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}{separator}{int(seconds * 1000) % 1000:03d}"


# --- error bodies -----------------------------------------------------------------------------------------


def _anthropic_error(status: int, error_type: str, message: str, headers: Headers = ()) -> ProviderResponse:
    request_id = _request_id("req_011")
    return _json(
        status,
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id},
        (("request-id", request_id), *headers),
    )


def _openai_error(
    status: int,
    message: str,
    error_type: str,
    code: str | None = None,
    param: str | None = None,
    headers: Headers = (),
) -> ProviderResponse:
    return _json(
        status,
        {"error": {"message": message, "type": error_type, "param": param, "code": code}},
        (("x-request-id", _request_id("req_")), *headers),
    )


def _gemini_error(
    status: int, grpc_status: str, message: str, details: list[dict[str, Any]] | None = None
) -> ProviderResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": grpc_status}
    if details:
        error["details"] = details
    return _json(status, {"error": error}, content_type=GEMINI_CONTENT_TYPE)


_OPENAI_QUOTA_MESSAGE: Final = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_GEMINI_QUOTA_MESSAGE: Final = (
    "You exceeded your current quota, please check your plan and billing details. For more information on "
    "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, "
    "head to: https://ai.dev/rate-limit. "
)
_GEMINI_HELP: Final = {
    "@type": "type.googleapis.com/google.rpc.Help",
    "links": [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ],
}


def _gemini_quota_failure(model: str, quota_id: str, quota_value: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
            {
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
                "quotaId": quota_id,
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": quota_value,
            }
        ],
    }


def _whole_seconds(retry_after: float) -> str:
    # Providers send whole seconds; round up so a client never retries early.
    return str(max(1, math.ceil(retry_after)))


def _claude_fault(fault: str, model: str, retry_after: float) -> ProviderResponse:
    if fault == "credit_exhausted":
        return _anthropic_error(
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
            "upgrade or purchase credits.",
        )
    if fault == "rate_limited":
        return _anthropic_error(
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute. For "
            "details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers "
            "for current usage. Please reduce the prompt length or the maximum tokens requested, or try again "
            "later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your "
            "options for a rate limit increase.",
            (
                ("retry-after", _whole_seconds(retry_after)),
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("x-should-retry", "true"),
            ),
        )
    if fault == "auth_failed":
        return _anthropic_error(401, "authentication_error", "invalid x-api-key")
    if fault == "server_error":
        return _anthropic_error(500, "api_error", "Internal server error", (("x-should-retry", "true"),))
    if fault == "overloaded":
        return _anthropic_error(529, "overloaded_error", "Overloaded", (("x-should-retry", "true"),))
    if fault == "bad_request":
        return _anthropic_error(
            400,
            "invalid_request_error",
            'messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row',
        )
    if fault == "context_too_long":
        return _anthropic_error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum")
    if fault == "content_policy":
        return _anthropic_error(400, "invalid_request_error", "Output blocked by content filtering policy")
    raise ValueError(f"no claude payload for fault {fault!r}")


def _openai_fault(fault: str, model: str, retry_after: float) -> ProviderResponse:
    if fault == "credit_exhausted":
        return _openai_error(429, _OPENAI_QUOTA_MESSAGE, "insufficient_quota", code="insufficient_quota")
    if fault == "rate_limited":
        seconds = _whole_seconds(retry_after)
        return _openai_error(
            429,
            f"Rate limit reached for {model} in organization org-emulator on requests per min (RPM): Limit 500, "
            f"Used 500, Requested 1. Please try again in {seconds}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            code="rate_limit_exceeded",
            headers=(
                ("retry-after", seconds),
                ("x-ratelimit-limit-requests", "500"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", f"{seconds}s"),
            ),
        )
    if fault == "auth_failed":
        return _openai_error(
            401,
            "Incorrect API key provided: sk-proj-********************************************wxyz. You can find "
            "your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            code="invalid_api_key",
        )
    if fault == "server_error":
        return _openai_error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )
    if fault == "overloaded":
        return _openai_error(503, "The server is overloaded or not ready yet.", "server_error")
    if fault == "bad_request":
        return _openai_error(
            400,
            "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "invalid_request_error",
            code="integer_below_min_value",
            param="max_tokens",
        )
    if fault == "context_too_long":
        return _openai_error(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages resulted in 250000 "
            "tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            code="context_length_exceeded",
            param="messages",
        )
    if fault == "content_policy":
        return _openai_error(
            400,
            "Your request was rejected as a result of our safety system. Your prompt may contain text that is "
            "not allowed by our safety system.",
            "invalid_request_error",
            code="content_policy_violation",
        )
    raise ValueError(f"no openai payload for fault {fault!r}")


def _gemini_fault(fault: str, model: str, retry_after: float, input_tokens: int) -> ProviderResponse:
    if fault == "credit_exhausted":
        return _gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            _GEMINI_QUOTA_MESSAGE,
            [_gemini_quota_failure(model, "GenerateRequestsPerDayPerProjectPerModel", "10000"), _GEMINI_HELP],
        )
    if fault == "rate_limited":
        return _gemini_error(
            429,
            "RESOURCE_EXHAUSTED",
            _GEMINI_QUOTA_MESSAGE,
            [
                _gemini_quota_failure(model, "GenerateRequestsPerMinutePerProjectPerModel", "1000"),
                _GEMINI_HELP,
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{_whole_seconds(retry_after)}s",
                },
            ],
        )
    if fault == "auth_failed":
        message = "API key not valid. Please pass a valid API key."
        return _gemini_error(
            400,
            "INVALID_ARGUMENT",
            message,
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        )
    if fault == "server_error":
        return _gemini_error(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        )
    if fault == "overloaded":
        return _gemini_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")
    if fault == "bad_request":
        return _gemini_error(
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received. Unknown name \"max_output_token\" at 'generation_config': Cannot find "
            "field.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {
                            "field": "generation_config",
                            "description": 'Invalid JSON payload received. Unknown name "max_output_token" at '
                            "'generation_config': Cannot find field.",
                        }
                    ],
                }
            ],
        )
    if fault == "context_too_long":
        return _gemini_error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1250000) exceeds the maximum number of tokens allowed (1048576).",
        )
    if fault == "content_policy":
        # Gemini does not fail a blocked prompt: it answers 200 with no candidates and says why.
        return _json(
            200,
            {
                "promptFeedback": {
                    "blockReason": "SAFETY",
                    "safetyRatings": [
                        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"},
                    ],
                },
                "usageMetadata": {"promptTokenCount": input_tokens, "totalTokenCount": input_tokens},
                "modelVersion": model,
                "responseId": uuid.uuid4().hex[:22],
            },
            content_type=GEMINI_CONTENT_TYPE,
        )
    raise ValueError(f"no gemini payload for fault {fault!r}")


_GATEWAY_HTML: Final = (
    b"<!DOCTYPE html>\n<html><head><title>Network Access Required</title></head>\n<body>\n"
    b"<h1>Sign in to continue</h1>\n<p>You must log in to this network before you can access the Internet.</p>\n"
    b'<form method="post" action="/login"><input name="user"><input type="password" name="pass">'
    b"<button>Log in</button></form>\n</body></html>\n"
)


def fault_response(
    provider: Provider, fault: Fault, model: str, retry_after: float = 30.0, input_tokens: int = 1
) -> ProviderResponse:
    """What ``provider`` sends when ``fault`` happens; transport faults (hang, reset) have no payload."""
    if fault in TRANSPORT_FAULTS:
        raise ValueError(f"{fault!r} is a transport fault and has no payload")
    if fault == "bad_output_html":
        return ProviderResponse(200, (("Content-Type", "text/html; charset=utf-8"),), _GATEWAY_HTML)
    if fault == "empty_output":
        return success_response(provider, model, "", input_tokens, 0)
    if fault == "bad_output_json":
        # A real body cut short mid-stream: valid prefix, no closing braces.
        whole = success_response(provider, model, "truncated", input_tokens, 1)
        return ProviderResponse(200, whole.headers, whole.body[: len(whole.body) // 2])
    if provider == "claude":
        return _claude_fault(fault, model, retry_after)
    if provider == "gemini":
        return _gemini_fault(fault, model, retry_after, input_tokens)
    return _openai_fault(fault, model, retry_after)


def not_found_response(provider: Provider, method: str, path: str) -> ProviderResponse:
    """The provider's 404 for a path it does not serve (or, for Gemini, a model it does not know)."""
    if provider == "claude":
        return _anthropic_error(404, "not_found_error", "Not Found")
    if provider == "gemini":
        return _gemini_error(404, "NOT_FOUND", f"Requested entity was not found: {method} {path}")
    return _openai_error(404, f"Invalid URL ({method} {path})", "invalid_request_error")


def invalid_body_response(provider: Provider) -> ProviderResponse:
    """The provider's 400 for a request body that is not JSON."""
    if provider == "claude":
        return _anthropic_error(400, "invalid_request_error", "There was an error parsing the body of your request.")
    if provider == "gemini":
        return _gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.")
    return _openai_error(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        "invalid_request_error",
    )


def media_refused_response(
    provider: Provider, message: str, code: str | None = None, param: str | None = None
) -> ProviderResponse:
    """The provider's 400 for media its API does not take (a type, a format, bytes that do not decode)."""
    if provider == "claude":
        return _anthropic_error(400, "invalid_request_error", message)
    if provider == "gemini":
        return _gemini_error(400, "INVALID_ARGUMENT", message)
    return _openai_error(400, message, "invalid_request_error", code=code, param=param)
