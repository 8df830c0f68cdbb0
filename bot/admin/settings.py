"""Settings of the admin side, read from the environment (a mapping, so tests pass a dict).

Every value is validated here, at start-up, with an error that names the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

# A bearer token opens every admin route: one short enough to guess is refused rather than used.
ADMIN_TOKEN_MIN_CHARS = 16


class AdminSettingsError(ValueError):
    """An admin environment variable has an unusable value; the message names it."""


@dataclass(frozen=True)
class AdminSettings:
    admin_api_token: str | None = None  # None: admin routes answer 403 (never open by default); else 16+ chars
    alert_webhook_url: str | None = None
    admin_whatsapp_number: str | None = None
    selftest_interval_s: float = 300.0  # SELFTEST_INTERVAL_MINUTES
    idle_probe_after_s: float = 3600.0  # IDLE_PROBE_AFTER_MINUTES: a provider without traffic this long is probed
    alert_check_interval_s: float = 30.0  # ALERT_CHECK_SECONDS
    retention_days: float = 90.0  # RETENTION_DAYS: older llm_calls / provider_events / alerts are deleted
    alert_webhook_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AdminSettings:
        env = os.environ if env is None else env
        url = (env.get("ALERT_WEBHOOK_URL") or "").strip() or None
        if url is not None and not url.startswith(("http://", "https://")):
            raise AdminSettingsError("ALERT_WEBHOOK_URL: must start with http:// or https://")
        return cls(
            admin_api_token=_admin_token(env),
            alert_webhook_url=url,
            admin_whatsapp_number=(env.get("ADMIN_WHATSAPP_NUMBER") or "").strip() or None,
            selftest_interval_s=60 * _positive(env, "SELFTEST_INTERVAL_MINUTES", 5),
            idle_probe_after_s=60 * _positive(env, "IDLE_PROBE_AFTER_MINUTES", 60, allow_zero=True),
            alert_check_interval_s=_positive(env, "ALERT_CHECK_SECONDS", 30),
            retention_days=_positive(env, "RETENTION_DAYS", 90),
        )


def _admin_token(env: Mapping[str, str]) -> str | None:
    """ADMIN_API_TOKEN, or None (blank: the admin API is disabled). The error never repeats the token."""
    token = (env.get("ADMIN_API_TOKEN") or "").strip() or None
    if token is not None and len(token) < ADMIN_TOKEN_MIN_CHARS:
        raise AdminSettingsError(
            f"ADMIN_API_TOKEN: must be at least {ADMIN_TOKEN_MIN_CHARS} characters, got {len(token)} "
            "(leave it unset to disable the admin API)"
        )
    return token


def _positive(env: Mapping[str, str], name: str, default: float, allow_zero: bool = False) -> float:
    raw = env.get(name)
    if raw is None or not str(raw).strip():
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise AdminSettingsError(f"{name}: must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise AdminSettingsError(f"{name}: must be a positive number, got {raw!r}")
    return value
