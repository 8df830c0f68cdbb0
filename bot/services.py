"""The composition root: the one place where a process's objects are built, from settings parsed once.

Gunicorn's workers and ``python -m bot serve`` get them through ``bot.web.create_app``; every other
``python -m bot`` command calls ``open_services`` itself. ``Services.from_env`` parses the process and
admin settings, so a bad value stops every kind of process alike before anything is opened or started.
Every other piece is built when first asked for, so a command pays only for what it uses:

    store             the shared SQLite store (DATABASE_PATH)
    llm.service       the ``LLMService``; LiteLLM is imported by its first call, not here. Sandbox mode, when
                      no provider key is set: every deployment the emulator speaks for points at the provider
                      emulator (SANDBOX_EMULATOR_URL's, else one this process starts), and the log says so
    whatsapp          the WhatsApp area (queue, engine, outbox, sender, worker); in sandbox mode, the emulator
                      this process started answers its prompts as a model would (``bot.sandbox.scripted_model``)
    chat_sessions     the web chat's sessions
    artisans          the artisan directory alone (``python -m bot artisans``)
    dispatch          the ``Dispatch`` of confirmed requests to artisans (built with the WhatsApp area, whose
                      outbox and sender it shares: one sender for every outbound message)
    whatsapp_settings, limit_settings, dispatch_settings, media_settings   the settings of the WhatsApp area, of
                      the web limits, of dispatch and of media fetching (the engine's ``MediaIntake``)
    scheduled_jobs()  the deployment's periodic jobs: the admin side's and the WhatsApp area's

Every entry point calls ``prepare_process`` first: ``.env`` loaded (DJOBEA_DOTENV), logging configured (LOG_LEVEL,
LOG_FORMAT). ``create_app`` does not, so tests that build apps keep their environment and pytest's logging.

The test double is chosen here and nowhere else: ``bot.llm`` and ``bot.whatsapp`` never import ``bot.sandbox``.
Nothing here imports Flask: the web area is asked for its ``LimitSettings`` only by ``create_app``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.admin.settings import AdminSettings
from bot.llm.errors import LLMError
from bot.settings import Settings
from bot.store import Store, StoreOpenError

if TYPE_CHECKING:
    from bot.admin.scheduler import ScheduledJob
    from bot.conversation.chat_sessions import ChatSessions
    from bot.dispatch import ArtisanDirectory, Dispatch, DispatchSettings
    from bot.llm import LLMService
    from bot.media import MediaSettings
    from bot.sandbox.emulator import ProviderEmulator
    from bot.web.limits import LimitSettings
    from bot.whatsapp.runtime import WhatsAppRuntime
    from bot.whatsapp.settings import WhatsAppSettings

log = logging.getLogger(__name__)

# What a configuration problem raises: the settings classes of every area raise ValueError subclasses naming
# the bad variable; the store names a DATABASE_PATH it cannot open; the LLM layer the router config file and key.
CONFIG_ERRORS = (LLMError, ValueError, StoreOpenError)
SANDBOX_KEY = "sandbox-key-not-secret"
# The emulator's name for each LiteLLM provider family it speaks.
EMULATED_FAMILIES = {"anthropic": "claude", "gemini": "gemini", "openai": "openai"}
RESUME_INBOUND_INTERVAL_S = 60.0
DISPATCH_TICK_INTERVAL_S = 30.0  # batch timeouts are minutes: half a minute late at worst

T = TypeVar("T")


class LLMProviders:
    """This process's way to the models: the ``LLMService``, built on first use, and in sandbox mode the
    emulator it calls. Deciding sandbox mode reads the router config; nothing here imports litellm."""

    def __init__(
        self, settings: Settings, env: Mapping[str, str], store: Callable[[], Store], lock: threading.RLock
    ) -> None:
        self._settings = settings
        self._env = env
        self._store = store
        self._lock = lock  # the services' own: building the service may open the store
        self._service: LLMService | None = None
        self._sandbox: ProviderEmulator | None = None
        self._sandbox_url: str | None = None

    @property
    def service(self) -> LLMService:
        with self._lock:
            if self._service is None:
                self._service = self._open()
            return self._service

    @property
    def sandbox(self) -> ProviderEmulator | None:
        """The emulator this process started (sandbox mode without SANDBOX_EMULATOR_URL), else None."""
        self.service  # noqa: B018 (sandbox mode is decided when the service is built)
        return self._sandbox

    @property
    def sandbox_url(self) -> str | None:
        """The emulator every deployment calls in sandbox mode; None with real providers."""
        self.service  # noqa: B018
        return self._sandbox_url

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.stop()

    def _open(self) -> LLMService:
        """Real providers when a key is set, else the sandbox."""
        from bot.llm import LLMService, load_router_config

        config_path = self._settings.router_config_path
        setup = load_router_config(config_path, self._env)
        if setup.deployments:
            return LLMService(setup, self._store())
        url = self._settings.sandbox_url
        if url is None:
            from bot.sandbox import ProviderEmulator

            self._sandbox = ProviderEmulator().start()
            url = self._sandbox.base_url
        try:
            setup = load_router_config(config_path, {**self._env, **sandbox_env(config_path, url)})
            service = LLMService(setup, self._store())
        except BaseException:
            if self._sandbox is not None:  # not left running for a process that is about to stop
                self._sandbox.stop()
                self._sandbox = None
            raise
        log.warning(
            "SANDBOX MODE: no provider API key is set, so %s answer from the local provider emulator at %s. "
            "Set ANTHROPIC_API_KEY / GEMINI_API_KEY / OPENAI_API_KEY to use real providers.",
            ", ".join(d.name for d in setup.deployments),
            url,
        )
        self._sandbox_url = url
        return service


class Services:
    """Everything one process shares between its areas. Shared *state* lives in the store, never here."""

    def __init__(
        self,
        env: Mapping[str, str],
        settings: Settings,
        admin_settings: AdminSettings,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.env = env
        self.settings = settings
        self.admin_settings = admin_settings
        self.clock = clock  # of the WhatsApp area, the chat sessions and the rate-limit windows
        self.sleep = sleep  # of the WhatsApp sender's retries
        self._lock = threading.RLock()  # pieces build on one another (whatsapp needs the store and the LLM)
        self.llm = LLMProviders(settings, env, lambda: self.store, self._lock)
        self._pieces: dict[str, Any] = {}

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Services:
        """Parse the process and admin settings of ``env`` (default ``os.environ``); open nothing."""
        env = os.environ if env is None else env
        return cls(env, Settings.from_env(env), AdminSettings.from_env(env), clock=clock, sleep=sleep)

    def _once(self, name: str, build: Callable[[], T]) -> T:
        with self._lock:
            if name not in self._pieces:
                self._pieces[name] = build()
            return self._pieces[name]

    @property
    def store(self) -> Store:
        return self._once("store", lambda: Store(self.settings.database_path))

    @property
    def whatsapp_settings(self) -> WhatsAppSettings:
        from bot.whatsapp.settings import WhatsAppSettings

        return self._once("whatsapp_settings", lambda: WhatsAppSettings.from_env(self.env))

    @property
    def media_settings(self) -> MediaSettings:
        from bot.media import MediaSettings

        return self._once("media_settings", lambda: MediaSettings.from_env(self.env))

    @property
    def dispatch_settings(self) -> DispatchSettings:
        from bot.dispatch import DispatchSettings

        return self._once("dispatch_settings", lambda: DispatchSettings.from_env(self.env))

    @property
    def limit_settings(self) -> LimitSettings:
        from bot.web.limits import LimitSettings

        return self._once("limit_settings", lambda: LimitSettings.from_env(self.env))

    @property
    def whatsapp(self) -> WhatsAppRuntime:
        return self._once("whatsapp", self._build_whatsapp)

    @property
    def dispatch(self) -> Dispatch:
        """Dispatch shares the WhatsApp area's outbox and sender, and its worker routes artisans' messages to it,
        so both are built together (``_build_whatsapp``)."""
        self.whatsapp  # noqa: B018
        return self._pieces["dispatch"]

    @property
    def artisans(self) -> ArtisanDirectory:
        """The artisan directory alone (``python -m bot artisans``): no WhatsApp area, no model."""
        from bot.dispatch import ArtisanDirectory, QuartierTable

        quartiers = QuartierTable.load(self.dispatch_settings.quartiers_path)
        return self._once("artisans", lambda: ArtisanDirectory(self.store, quartiers, self.clock))

    @property
    def chat_sessions(self) -> ChatSessions:
        from bot.conversation.chat_sessions import ChatSessions

        return self._once("chat_sessions", lambda: ChatSessions(self.store, self.clock))

    @property
    def send_admin_whatsapp(self) -> Callable[[str], None] | None:
        """How alerts reach ADMIN_WHATSAPP_NUMBER through Twilio; None without a number or Twilio credentials."""
        from bot.whatsapp.runtime import admin_whatsapp_sender

        return self._once(
            "send_admin_whatsapp",
            lambda: admin_whatsapp_sender(self.whatsapp_settings, self.admin_settings.admin_whatsapp_number),
        )

    def scheduled_jobs(self) -> list[ScheduledJob]:
        """The deployment's periodic jobs: self-tests, alerts and retention of the admin side, and the WhatsApp
        area's recovery of messages whose worker died."""
        from bot.admin.scheduler import ScheduledJob, admin_jobs
        from bot.inbound import release_expired_leases

        resume_inbound = ScheduledJob(
            "resume_inbound", lambda: release_expired_leases(self.store), RESUME_INBOUND_INTERVAL_S
        )
        # Starts confirmed requests nobody started, moves timed-out batches on, sends what dispatch recorded.
        dispatch_tick = ScheduledJob("dispatch_tick", lambda: self.dispatch.tick(), DISPATCH_TICK_INTERVAL_S)
        return [
            *admin_jobs(self.llm.service, self.admin_settings, self.send_admin_whatsapp),
            resume_inbound,
            dispatch_tick,
        ]

    def close(self) -> None:
        """Stop what this process started: WhatsApp worker threads and the sandbox emulator."""
        runtime = self._pieces.get("whatsapp")
        if runtime is not None:
            runtime.stop_workers()
        self.llm.close()

    def _build_whatsapp(self) -> WhatsAppRuntime:
        from bot.whatsapp.runtime import build_whatsapp_runtime

        settings = self.whatsapp_settings
        llm = self.llm.service
        if self.llm.sandbox is not None:
            # Our emulator answers the Djobea prompts as a model would, so a keyless demo holds a conversation.
            from bot.sandbox.scripted_model import djobea_model_reply

            self.llm.sandbox.set_responder(None, djobea_model_reply)
        runtime = build_whatsapp_runtime(self.store, llm, settings, clock=self.clock, sleep=self.sleep)
        # Photos and voice notes: fetched from Twilio with its credentials, kept beside the database.
        from bot.media import MediaFetcher, MediaIntake, MediaLibrary

        fetcher = MediaFetcher(self.media_settings, settings.api_base, settings.account_sid, settings.auth_token)
        runtime.engine.media = MediaIntake(fetcher, MediaLibrary(self.store, clock=self.clock), self.media_settings)
        from bot.dispatch import Dispatch

        dispatch = Dispatch(runtime.store, runtime.outbox, runtime.sender, self.dispatch_settings, clock=self.clock)
        runtime.worker.dispatch = dispatch  # artisans' messages and customers' status questions go to it
        self._pieces["dispatch"] = dispatch
        return runtime


def open_services(
    env: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Services:
    """``Services.from_env`` with the store opened, so a DATABASE_PATH it cannot use is reported at once."""
    services = Services.from_env(env, clock=clock, sleep=sleep)
    services.store  # noqa: B018
    return services


DOTENV_DEFAULT = ".env"


def prepare_process(env: Mapping[str, str] | None = None) -> None:
    """What every entry point does first (``python -m bot``, ``wsgi.py``, ``gunicorn.conf.py``), before any settings
    are parsed: read ``.env`` into the environment, then configure logging (``bot.logs``) from it.

    DJOBEA_DOTENV names the file: unset, ``.env`` in the current directory when there is one; ``0`` (what the tests
    set), none. A variable already in the environment wins over the file. Raises ``CONFIG_ERRORS`` for a named
    file that does not exist or a bad LOG_LEVEL / LOG_FORMAT."""
    from bot.logs import configure_logging

    env = os.environ if env is None else env
    choice = (env.get("DJOBEA_DOTENV") or DOTENV_DEFAULT).strip()
    if choice != "0":
        path = Path(choice)
        if path.is_file():
            from dotenv import load_dotenv

            load_dotenv(path, override=False)
        elif choice != DOTENV_DEFAULT:
            raise ValueError(f"DJOBEA_DOTENV names {choice}, which is not a file")
    configure_logging(env)


def sandbox_env(config_path: Path | None, emulator_url: str) -> dict[str, str]:
    """Environment values pointing every emulated deployment of the config at the emulator."""
    import yaml

    from bot.llm.router_config import DEFAULT_CONFIG_PATH, ENV_PREFIX

    raw = yaml.safe_load(Path(config_path or DEFAULT_CONFIG_PATH).read_text(encoding="utf-8"))
    values: dict[str, str] = {}
    for entry in raw.get("model_list") or []:
        params = entry.get("litellm_params") or {}
        family = str(params.get("model", "")).split("/", 1)[0]
        if family not in EMULATED_FAMILIES:
            continue  # the emulator cannot speak for it: it stays absent in the sandbox
        for key, value in params.items():
            if not (isinstance(value, str) and value.startswith(ENV_PREFIX)):
                continue
            if key == "api_key":
                values[value[len(ENV_PREFIX) :]] = SANDBOX_KEY
            elif key == "api_base":
                suffix = "/v1" if family == "openai" else ""
                values[value[len(ENV_PREFIX) :]] = emulator_url.rstrip("/") + suffix
    return values


__all__ = ["CONFIG_ERRORS", "LLMProviders", "Services", "open_services", "prepare_process", "sandbox_env"]
