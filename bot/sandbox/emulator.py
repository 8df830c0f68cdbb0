"""A local HTTP server that speaks the Anthropic, Gemini and OpenAI chat APIs, with injectable faults.

It owns the *when* of an emulated provider (routing, faults, latency, hangs, dropped connections, the
record of every call and the ``/_emulator/`` control API); the *what* (bodies, statuses, headers) lives in
``bot.sandbox.provider_payloads``. LiteLLM's real HTTP clients talk to it, so tests, benchmarks and the app's
sandbox mode exercise the same code paths as production.

Endpoints served (provider names are the product's: claude, gemini, openai)::

    POST /v1/messages                                   claude   (api_base = base_url)
    POST [/v1beta|/v1]/models/{model}:generateContent   gemini   (api_base = base_url or base_url/v1beta)
    POST /v1/chat/completions                           openai   (api_base = base_url/v1)
    POST /v1/audio/transcriptions                       openai   (multipart, as litellm.transcription sends it)
    GET  /_emulator/calls[?provider=]    POST /_emulator/faults    POST /_emulator/latency
    POST /_emulator/reset                GET  /_emulator/health

and an emulated Twilio Messages API (``bot.sandbox.twilio_emulator``, state in ``emulator.twilio``)::

    POST /2010-04-01/Accounts/{AccountSid}/Messages.json          (TWILIO_API_BASE = base_url)
    GET  /2010-04-01/Accounts/{AccountSid}/Messages[/{Sid}].json
    GET  /_emulator/twilio/messages      POST /_emulator/twilio/faults   POST /_emulator/twilio/latency
    POST /_emulator/twilio/credentials   POST /_emulator/twilio/callbacks
    GET  /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}   (Basic auth; 307 to the CDN)
    GET  /_cdn/media/{token}             POST /_emulator/twilio/media    GET /_emulator/twilio/media/fetches

Media in provider requests (Anthropic ``image`` blocks, Gemini ``inlineData``, OpenAI ``image_url`` and
``input_audio``) are checked as the real APIs check them (``bot.sandbox.provider_media``), recorded with each
call (kind, MIME type, sha256) and counted in its usage; the transcription endpoint answers from the test
media's manifest (``bot.sandbox.media``), and takes the faults and latency set for openai.

Run standalone with ``python -m bot.sandbox.emulator --port 8090`` (what ``SANDBOX_EMULATOR_URL`` points
gunicorn workers at): it answers the Djobea prompts like the in-process sandbox does, through
``bot.sandbox.scripted_model`` (other prompts get the echo); ``--echo`` gives the raw ``[provider] ...``
echo to every prompt.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import re
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from bot.sandbox.media import transcribe
from bot.sandbox.provider_media import (
    MediaPart,
    MediaRefused,
    audio_part,
    media_in_request,
    media_tokens_by_kind,
)
from bot.sandbox.provider_payloads import (
    FAULTS,
    PROVIDERS,
    Fault,
    Provider,
    ProviderResponse,
    estimate_tokens,
    fault_response,
    gemini_thinking_exhausted_response,
    invalid_body_response,
    media_refused_response,
    not_found_response,
    success_response,
    thinking_exhausts_output,
    transcription_response,
)
from bot.sandbox.twilio_emulator import CDN_PREFIX, MEDIA_HANG_SECONDS, TWILIO_PREFIX, EmulatedTwilio

CONTROL_PREFIX: Final = "/_emulator/"
DEFAULT_RETRY_AFTER: Final = 30.0
DEFAULT_HANG_SECONDS: Final = 120.0
# How often a hanging handler checks whether its client went away; only the hang path polls.
_HANG_POLL_SECONDS: Final = 0.05
_GEMINI_PATH: Final = re.compile(r"^(?:/v1(?:beta|alpha)?)?/models/(?P<model>[^/:]+):generateContent$")
_KEY_HEADERS: Final = frozenset({"x-api-key", "x-goog-api-key", "authorization", "api-key"})
_KEY_QUERY: Final = re.compile(r"(?<=[?&]key=)[^&]*")
_TRANSCRIPTION_PATHS: Final = ("/v1/audio/transcriptions", "/audio/transcriptions")
# What Whisper takes, by the uploaded file's extension (AMR, another WhatsApp voice format, is not among them).
WHISPER_EXTENSIONS: Final = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
_LANGUAGES: Final = {"en": "english", "fr": "french", "pcm": "english"}


@dataclass(frozen=True, slots=True)
class EmulatedRequest:
    """A provider request as a responder sees it: messages flattened to ``{"role", "content": str}``.

    ``headers`` are lower-cased, with API keys cut to their last four characters so records never hold
    a secret. ``media`` are the images and audio it carried, each tied to its message by index.
    """

    provider: Provider
    model: str
    messages: list[dict[str, str]]
    max_tokens: int | None
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float
    media: tuple[MediaPart, ...] = ()

    @property
    def last_user_text(self) -> str:
        """The newest user message, which is what a scripted responder usually reacts to."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        return ""

    @property
    def last_user_media(self) -> tuple[MediaPart, ...]:
        """The media of the newest user message: what the customer just showed or said."""
        last = next((i for i in range(len(self.messages) - 1, -1, -1) if self.messages[i]["role"] == "user"), None)
        return tuple(part for part in self.media if part.message_index == last)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "body": self.body,
            "headers": self.headers,
            "received_at": self.received_at,
            "media": [part.to_json() for part in self.media],
        }


@dataclass(slots=True)
class RecordedCall:
    """One request the emulator received; ``status`` stays None when no response was sent (hang, reset)."""

    provider: Provider
    model: str
    method: str
    path: str
    received_at: float
    fault: Fault | None
    status: int | None = None
    request: EmulatedRequest | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "method": self.method,
            "path": self.path,
            "received_at": self.received_at,
            "fault": self.fault,
            "status": self.status,
            "media": [part.to_json() for part in self.request.media] if self.request else [],
            "request": self.request.to_json() if self.request else None,
        }


Responder = Callable[[EmulatedRequest], str]


def echo_reply(request: EmulatedRequest) -> str:
    """Default reply: names the provider and echoes the start of the last user message, deterministically."""
    return f"[{request.provider}] {request.last_user_text[:80]}"


@dataclass(slots=True)
class _FaultPlan:
    fault: Fault
    remaining: int | None  # None: every request until cleared
    retry_after: float
    hang_seconds: float


@dataclass(slots=True)
class _ProviderState:
    fault: _FaultPlan | None = None
    latency: float = 0.0
    responder: Responder | None = None
    # Set (then replaced) whenever the fault changes, to free the requests hanging under the old one.
    release: threading.Event = field(default_factory=threading.Event)


def _check_provider(provider: str) -> Provider:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    return provider  # type: ignore[return-value]


def _check_fault(fault: str) -> Fault:
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
    return fault  # type: ignore[return-value]


class ProviderEmulator:
    """The emulated providers on one port; thread-safe, started with ``start()`` or ``with``."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, max_recorded: int = 10_000, responder: Responder | None = None
    ) -> None:
        """``max_recorded`` bounds memory in long sandbox runs: older records drop, counts stay exact.
        ``responder`` answers when nothing is scripted (default ``echo_reply``); ``reset()`` comes back to it."""
        self._address = (host, port)
        self._unscripted: Responder = responder or echo_reply
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._states: dict[Provider, _ProviderState] = {p: _ProviderState() for p in PROVIDERS}  # type: ignore[misc]
        self._default_responder: Responder | None = None
        self._calls: deque[RecordedCall] = deque(maxlen=max_recorded)
        self._counts: Counter[str] = Counter()
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _EmulatorServer | None = None
        self._base_url: str | None = None  # kept after stop() so callers can still name where it was
        self._thread: threading.Thread | None = None
        self.twilio = EmulatedTwilio()  # the emulated Twilio Messages API served on the same port

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> ProviderEmulator:
        """Bind and serve in a daemon thread; returns self so ``ProviderEmulator().start()`` reads well."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._stopping.clear()
        self._server = _EmulatorServer(self._address, self)
        host, port = self._server.server_address[:2]
        self._base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="provider-emulator",
            daemon=True,
        )
        self._thread.start()
        self.twilio.base_url = self._base_url
        return self

    def stop(self) -> None:
        """Stop serving, free hanging handlers and drop kept-alive connections; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._lock:
            for state in self._states.values():
                state.release.set()
            connections = list(self._connections)
        server.shutdown()
        server.server_close()
        # Idle keep-alive handlers block in recv; shutting their sockets down lets those threads end.
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> ProviderEmulator:
        return self if self._server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("emulator not started")
        return self._base_url

    def api_base(self, provider: str) -> str:
        """The LiteLLM ``api_base`` (or *_API_BASE variable) that points ``provider`` at this emulator."""
        return self.base_url + "/v1" if _check_provider(provider) == "openai" else self.base_url

    # --- scripting ----------------------------------------------------------------------------------------

    def set_fault(
        self,
        provider: str,
        fault: str | None,
        times: int | None = None,
        retry_after: float = DEFAULT_RETRY_AFTER,
        hang_seconds: float = DEFAULT_HANG_SECONDS,
    ) -> None:
        """Make ``provider`` fail with ``fault`` for the next ``times`` requests (None: until cleared)."""
        name = _check_provider(provider)
        if fault is None:
            self.clear_fault(name)
            return
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        plan = _FaultPlan(_check_fault(fault), times, float(retry_after), float(hang_seconds))
        if plan.retry_after < 0 or plan.hang_seconds < 0:
            raise ValueError("retry_after and hang_seconds must not be negative")
        with self._lock:
            self._replace_fault(self._states[name], plan)

    def clear_fault(self, provider: str) -> None:
        """Make ``provider`` healthy again; requests hanging under the old fault are released."""
        name = _check_provider(provider)
        with self._lock:
            self._replace_fault(self._states[name], None)

    def set_latency(self, provider: str, seconds: float) -> None:
        """Delay every answer (success or error) from ``provider`` by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"latency must not be negative, got {seconds}")
        name = _check_provider(provider)
        with self._lock:
            self._states[name].latency = float(seconds)

    def set_responder(self, provider: str | None, fn: Responder | None) -> None:
        """Script the reply text for one provider, or for all when ``provider`` is None; None restores the
        unscripted reply (the echo, unless the emulator was built with another ``responder``)."""
        with self._lock:
            if provider is None:
                self._default_responder = fn
            else:
                self._states[_check_provider(provider)].responder = fn

    def reset(self) -> None:
        """Back to a healthy, unscripted emulator (answering with its built-in ``responder``) with no records."""
        with self._lock:
            for state in self._states.values():
                self._replace_fault(state, None)
                state.latency = 0.0
                state.responder = None
            self._default_responder = None
            self._calls.clear()
            self._counts.clear()
        self.twilio.reset()

    @staticmethod
    def _replace_fault(state: _ProviderState, plan: _FaultPlan | None) -> None:
        state.fault = plan
        state.release.set()
        state.release = threading.Event()

    # --- records ------------------------------------------------------------------------------------------

    def calls(self, provider: str | None = None) -> list[RecordedCall]:
        """Copies of the recorded calls, oldest first, optionally for one provider."""
        name = None if provider is None else _check_provider(provider)
        with self._lock:
            return [replace(call) for call in self._calls if name is None or call.provider == name]

    def call_count(self, provider: str | None = None) -> int:
        """Requests received since the last reset (all of them, even those dropped from the records)."""
        name = None if provider is None else _check_provider(provider)
        with self._lock:
            return self._count(name)

    def wait_for_calls(self, count: int, provider: str | None = None, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` calls arrived (for ``provider``); lets tests sync without sleeping."""
        name = None if provider is None else _check_provider(provider)
        with self._changed:
            return self._changed.wait_for(lambda: self._count(name) >= count, timeout)

    def _count(self, provider: str | None) -> int:
        return sum(self._counts.values()) if provider is None else self._counts[provider]

    # --- used by the handler ------------------------------------------------------------------------------

    def _begin(
        self,
        provider: Provider,
        model: str,
        method: str,
        path: str,
        request: EmulatedRequest | None,
        takes_fault: bool = True,
    ) -> tuple[RecordedCall, _FaultPlan | None, float, threading.Event, Responder]:
        """Record the call and take the fault (counting down ``times``) in one step under the lock.

        A request that could not be parsed (``request`` None) or that the API refuses for its content
        (``takes_fault`` False) is answered as the provider would and takes no fault, so a ``times=1`` fault
        is not spent on it.
        """
        with self._changed:
            state = self._states[provider]
            plan = state.fault if request is not None and takes_fault else None
            if plan is not None and plan.remaining is not None:
                plan.remaining -= 1
                if plan.remaining <= 0:
                    state.fault = None  # later requests are healthy; this one keeps the old release event
            call = RecordedCall(
                provider, model, method, path, time.time(), plan.fault if plan else None, request=request
            )
            self._calls.append(call)
            self._counts[provider] += 1
            self._changed.notify_all()
            responder = state.responder or self._default_responder or self._unscripted
            return call, plan, state.latency, state.release, responder

    def _set_status(self, call: RecordedCall, status: int) -> None:
        with self._lock:
            call.status = status

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


# --- request parsing --------------------------------------------------------------------------------------


def _route(path: str) -> tuple[Provider | None, str]:
    """Which provider serves ``path``, and the model when the path names it (Gemini)."""
    if path == "/v1/messages":
        return "claude", ""
    if path in ("/v1/chat/completions", "/chat/completions", *_TRANSCRIPTION_PATHS):
        return "openai", ""
    match = _GEMINI_PATH.match(path)
    if match:
        return "gemini", unquote(match["model"])
    return None, ""


def _guess_provider(path: str, headers: dict[str, str]) -> Provider:
    """For a path nobody serves, pick whose 404 to send from the client's auth header."""
    if "x-api-key" in headers or "anthropic-version" in headers:
        return "claude"
    if "x-goog-api-key" in headers or "/models/" in path or "key=" in path:
        return "gemini"
    return "openai"


def _text(content: Any) -> str:
    """Flatten string-or-blocks content (all three providers allow both) to plain text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, str | None, bytes]]:
    """The fields of a multipart/form-data body: name -> (filename, part content type, bytes)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        raise ValueError("body is not multipart/form-data")
    fields = {}
    for chunk in raw.split(b"--" + match[1].encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = dict(line.split(":", 1) for line in head.decode("utf-8", "replace").split("\r\n") if ":" in line)
        disposition = headers.get("Content-Disposition", headers.get("content-disposition", ""))
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        part_type = (headers.get("Content-Type") or headers.get("content-type") or "").strip() or None
        if name:
            fields[name[1]] = (filename[1] if filename else None, part_type, value.removesuffix(b"\r\n"))
    return fields


def _parse_transcription(raw: bytes, headers: dict[str, str]) -> EmulatedRequest:
    """A transcription upload as an ``EmulatedRequest``: the form fields as ``body``, the file as its media."""
    fields = _multipart(raw, headers.get("content-type", ""))
    if "file" not in fields or "model" not in fields:
        raise ValueError("file and model are required")
    filename, part_type, data = fields.pop("file")
    body: dict[str, Any] = {name: value.decode("utf-8", "replace") for name, (_, _, value) in fields.items()}
    part = audio_part("openai", 0, part_type, data)
    body["file"] = {"filename": filename, "content_type": part_type, "size": len(data), "sha256": part.sha256}
    return EmulatedRequest(
        "openai", body["model"], [], None, body, _redacted_headers(headers), time.time(), media=(part,)
    )


def _whisper_refuses(request: EmulatedRequest) -> str | None:
    """Whisper's reason to refuse an upload (by its file name's extension), or None."""
    filename = request.body["file"]["filename"] or ""
    if filename.rpartition(".")[2].lower() not in WHISPER_EXTENSIONS:
        return f"Invalid file format. Supported formats: {list(WHISPER_EXTENSIONS)}"
    return None


def _redact_key(name: str, value: str) -> str:
    if name == "authorization":
        scheme, _, key = value.rpartition(" ")
        return f"{scheme} ***{key[-4:]}".strip()
    return "***" + value[-4:]


def _redacted_headers(raw: dict[str, str]) -> dict[str, str]:
    return {name: _redact_key(name, value) if name in _KEY_HEADERS else value for name, value in raw.items()}


def _parse_request(
    provider: Provider, path_model: str, body: dict[str, Any], headers: dict[str, str]
) -> EmulatedRequest:
    messages: list[dict[str, str]] = []
    if provider == "claude":
        if body.get("system"):
            messages.append({"role": "system", "content": _text(body["system"])})
        messages += [{"role": m.get("role", ""), "content": _text(m.get("content"))} for m in body.get("messages", [])]
        model, max_tokens = body.get("model", ""), body.get("max_tokens")
    elif provider == "gemini":
        system = body.get("systemInstruction") or body.get("system_instruction")
        if system:
            messages.append({"role": "system", "content": _text(system.get("parts"))})
        for content in body.get("contents", []):
            role = "assistant" if content.get("role") == "model" else content.get("role", "user")
            messages.append({"role": role, "content": _text(content.get("parts"))})
        config = body.get("generationConfig") or body.get("generation_config") or {}
        model, max_tokens = path_model, config.get("maxOutputTokens", config.get("max_output_tokens"))
    else:
        messages = [{"role": m.get("role", ""), "content": _text(m.get("content"))} for m in body.get("messages", [])]
        model, max_tokens = body.get("model", ""), body.get("max_completion_tokens", body.get("max_tokens"))
    return EmulatedRequest(provider, str(model), messages, max_tokens, body, headers, time.time())


# --- HTTP plumbing ----------------------------------------------------------------------------------------


class _EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections would make server_close() wait forever; stop() closes them instead.
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], emulator: ProviderEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _ProviderHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and left before its (delayed) answer is normal here, not a server fault.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which stalls without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _ProviderHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: LiteLLM's httpx clients reuse connections
    server_version = "provider-emulator"
    sys_version = ""
    disable_nagle_algorithm = True  # headers and body are two writes; Nagle would delay the second
    server: _EmulatorServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: per-request logging to stderr would dominate the benchmark's overhead figures."""

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track(self.connection, True)

    def finish(self) -> None:
        self.server.emulator._track(self.connection, False)
        with contextlib.suppress(OSError):  # the reset fault already closed the socket
            super().finish()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        raw = self._read_body()
        path, _, query = self.path.partition("?")
        if path.startswith(CONTROL_PREFIX):
            self._control(method, path, query, raw)
        elif path.startswith(TWILIO_PREFIX):
            self._twilio(method, path, query, raw)
        elif path.startswith(CDN_PREFIX) and method == "GET":
            self._cdn(path)
        else:
            self._provider(method, path, raw)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(chunks)
        return b""

    def _send(self, response: ProviderResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    # --- provider endpoints ---

    def _provider(self, method: str, path: str, raw: bytes) -> None:
        emulator = self.server.emulator
        headers = {name.lower(): value for name, value in self.headers.items()}
        recorded_path = _KEY_QUERY.sub(lambda m: "***" + m[0][-4:], self.path)
        provider, path_model = _route(path) if method == "POST" else (None, "")
        if provider is None:
            provider = _guess_provider(path, headers)
            call, *_ = emulator._begin(provider, path_model, method, recorded_path, None)
            return self._answer(call, not_found_response(provider, method, path))
        transcription = path in _TRANSCRIPTION_PATHS
        refused: ProviderResponse | None = None
        try:
            if transcription:
                request = _parse_transcription(raw, headers)
                reason = _whisper_refuses(request)
                refused = media_refused_response("openai", reason) if reason else None
            else:
                body = json.loads(raw)
                if not isinstance(body, dict):
                    raise ValueError("body is not a JSON object")
                request = _parse_request(provider, path_model, body, _redacted_headers(headers))
                try:
                    request = replace(request, media=tuple(media_in_request(provider, body)))
                except MediaRefused as exc:
                    refused = exc.response
        except (ValueError, TypeError, AttributeError, KeyError):  # not JSON, or JSON of the wrong shape
            call, *_ = emulator._begin(provider, path_model, method, recorded_path, None)
            return self._answer(call, invalid_body_response(provider))
        call, plan, latency, release, responder = emulator._begin(
            provider, request.model, method, recorded_path, request, takes_fault=refused is None
        )
        if latency and emulator._stopping.wait(latency):
            self.close_connection = True
            return
        if refused is not None:
            return self._answer(call, refused)
        media_tokens = media_tokens_by_kind(list(request.media))
        prompt_tokens = estimate_tokens("".join(m["content"] for m in request.messages)) + sum(media_tokens.values())
        if plan is None:
            if transcription:
                return self._answer(call, _transcribed(request))
            try:
                text = responder(request)
                if not isinstance(text, str):
                    raise TypeError(f"responder returned {type(text).__name__}, not str")
            except Exception:  # a broken scripted responder must show up as a failed call, not a dead thread
                return self._answer(call, fault_response(provider, "server_error", request.model))
            if thinking_exhausts_output(provider, request):
                return self._answer(call, gemini_thinking_exhausted_response(request.model, prompt_tokens))
            response = success_response(
                provider, request.model, text, prompt_tokens, estimate_tokens(text), media_tokens
            )
            return self._answer(call, response)
        if plan.fault == "hang":
            return self._hang(release, plan.hang_seconds)
        if plan.fault == "reset":
            return self._reset()
        if transcription and plan.fault in ("empty_output", "bad_output_json"):
            whole = _transcribed(request, "" if plan.fault == "empty_output" else None)
            body = whole.body if plan.fault == "empty_output" else whole.body[: len(whole.body) // 2]
            return self._answer(call, ProviderResponse(200, whole.headers, body))
        self._answer(call, fault_response(provider, plan.fault, request.model, plan.retry_after, prompt_tokens))

    def _twilio(self, method: str, path: str, query: str, raw: bytes) -> None:
        emulator = self.server.emulator
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = emulator.twilio.handle(method, path, query, headers, raw)
        if reply.latency and emulator._stopping.wait(reply.latency):
            self.close_connection = True
            return
        self._send(ProviderResponse(reply.status, reply.headers, reply.body))
        if reply.after is not None:
            reply.after()

    def _cdn(self, path: str) -> None:
        """Serve media bytes from the emulated CDN (no auth), or hold the body back under the ``hang`` fault."""
        twilio = self.server.emulator.twilio
        headers = {name.lower(): value for name, value in self.headers.items()}
        media, release = twilio.cdn(path.removeprefix(CDN_PREFIX), headers.get("authorization", ""))
        if media is None:
            body = b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code></Error>\n'
            return self._send(ProviderResponse(404, (("Content-Type", "application/xml"),), body))
        self.send_response(200)
        self.send_header("Content-Type", media.served_type)
        self.send_header("Content-Length", str(len(media.content)))
        self.end_headers()
        if media.fault == "hang":
            self.wfile.flush()
            return self._hang(release, MEDIA_HANG_SECONDS)
        self.wfile.write(media.content)

    def _answer(self, call: RecordedCall, response: ProviderResponse) -> None:
        # Status is recorded before the write so a client that got its answer sees it in calls().
        self.server.emulator._set_status(call, response.status)
        self._send(response)

    def _hang(self, release: threading.Event, seconds: float) -> None:
        """Hold the request unanswered until released, stopped, timed out or the client leaves."""
        deadline = time.monotonic() + seconds
        stopping = self.server.emulator._stopping
        while (remaining := deadline - time.monotonic()) > 0:
            if release.wait(min(remaining, _HANG_POLL_SECONDS)) or stopping.is_set() or self._client_gone():
                break
        self.close_connection = True  # never answered: the client sees the connection close

    def _client_gone(self) -> bool:
        # poll, not select: select refuses file descriptors above 1023, which a long test session reaches.
        try:
            poller = select.poll()
            poller.register(self.connection, select.POLLIN | select.POLLHUP | select.POLLERR)
            if not poller.poll(0):
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _reset(self) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0), as a crashing load balancer does."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The socket's fd closes only when its makefile() reader is closed too.
        self.rfile.close()
        self.connection.close()

    # --- control API ---

    def _control(self, method: str, path: str, query: str, raw: bytes) -> None:
        emulator = self.server.emulator
        try:
            if method == "GET" and path == "/_emulator/calls":
                provider = parse_qs(query).get("provider", [None])[0]
                return self._control_reply(200, {"calls": [c.to_json() for c in emulator.calls(provider)]})
            if method == "GET" and path == "/_emulator/health":
                return self._control_reply(200, {"ok": True})
            if path.startswith("/_emulator/twilio/"):
                return self._control_twilio(method, path, query, raw)
            if method != "POST" or path not in (
                "/_emulator/faults",
                "/_emulator/latency",
                "/_emulator/reset",
            ):
                return self._control_reply(404, {"error": f"no control endpoint {method} {path}"})
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            if path == "/_emulator/faults":
                emulator.set_fault(
                    body.get("provider", ""),
                    body.get("fault"),
                    times=body.get("times"),
                    retry_after=_or_default(body.get("retry_after"), DEFAULT_RETRY_AFTER),
                    hang_seconds=_or_default(body.get("hang_seconds"), DEFAULT_HANG_SECONDS),
                )
            elif path == "/_emulator/latency":
                emulator.set_latency(body.get("provider", ""), body.get("seconds", 0.0))
            else:
                emulator.reset()
            self._control_reply(200, {"ok": True})
        except (ValueError, TypeError) as exc:
            self._control_reply(400, {"error": str(exc)})

    def _control_twilio(self, method: str, path: str, query: str, raw: bytes) -> None:
        twilio = self.server.emulator.twilio
        if method == "GET" and path == "/_emulator/twilio/messages":
            to = parse_qs(query).get("to", [None])[0]
            return self._control_reply(200, {"messages": twilio.messages(to)})
        if method == "GET" and path == "/_emulator/twilio/media/fetches":
            return self._control_reply(200, {"fetches": twilio.media_fetches()})
        body = json.loads(raw) if raw.strip() else {}
        if method != "POST" or not isinstance(body, dict):
            return self._control_reply(404, {"error": f"no control endpoint {method} {path}"})
        if path == "/_emulator/twilio/faults":
            twilio.set_fault(body.get("fault"), times=body.get("times"), retry_after=body.get("retry_after"))
        elif path == "/_emulator/twilio/latency":
            twilio.set_latency(body.get("seconds", 0.0))
        elif path == "/_emulator/twilio/credentials":
            twilio.set_credentials(str(body.get("account_sid", "")), str(body.get("auth_token", "")))
        elif path == "/_emulator/twilio/callbacks":
            twilio.set_callbacks(bool(body.get("enabled")))
        elif path == "/_emulator/twilio/media":
            content = base64.b64decode(str(body.get("content", "")), validate=True)
            url = twilio.add_media(
                content,
                str(body.get("content_type", "")),
                fault=body.get("fault"),
                served_type=body.get("served_type"),
                message_sid=body.get("message_sid"),
                account_sid=body.get("account_sid"),
            )
            return self._control_reply(200, {"url": url})
        else:
            return self._control_reply(404, {"error": f"no control endpoint {method} {path}"})
        self._control_reply(200, {"ok": True})

    def _control_reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self._send(ProviderResponse(status, (("Content-Type", "application/json"),), body))


def _transcribed(request: EmulatedRequest, text: str | None = None) -> ProviderResponse:
    """Whisper's answer for this upload: the manifest's transcript of the audio (or ``text``)."""
    [part] = request.media
    language = _LANGUAGES.get(request.body.get("language", "en"), "english")
    return transcription_response(
        request.model,
        transcribe(part.sha256) if text is None else text,
        part.duration_s or 0.0,
        language,
        request.body.get("response_format", "json"),
    )


def _or_default(value: Any, default: float) -> Any:
    return default if value is None else value


def main(argv: list[str] | None = None) -> int:
    """Serve the emulated providers until SIGINT or SIGTERM; prints the base URL on the first line."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.emulator",
        description="Emulate the Anthropic, Gemini and OpenAI HTTP APIs locally (faults via /_emulator/).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8090, help="port to bind; 0 picks a free one (default 8090)")
    parser.add_argument(
        "--echo",
        action="store_true",
        help="answer every prompt with the raw echo '[provider] <last user message>' instead of the scripted "
        "Djobea model (whose replies the conversation engine accepts); /_emulator/reset keeps the choice",
    )
    args = parser.parse_args(argv)
    responder = echo_reply if args.echo else _scripted_model()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with ProviderEmulator(args.host, args.port, responder=responder) as emulator:
        print(emulator.base_url, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


def _scripted_model() -> Responder:
    """The responder the in-process sandbox installs (``bot.whatsapp.runtime``), so that an app behind
    SANDBOX_EMULATOR_URL gets replies its reply parser accepts rather than a holding reply every time."""
    # Imported here: scripted_model imports this module (it is pure text rules: no Flask, no conversation code).
    from bot.sandbox.scripted_model import djobea_model_reply

    return djobea_model_reply


if __name__ == "__main__":
    raise SystemExit(main())
