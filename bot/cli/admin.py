"""``python -m bot status`` (the provider table) and ``python -m bot selftest`` (probe now).

Both read the shared SQLite store (DATABASE_PATH), so they show and change what every worker sees.
``status`` makes no model call, so it never imports LiteLLM; ``selftest`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.cli.exit_status import EXIT_CONFIG, configuration_error

if TYPE_CHECKING:
    from bot.services import Services

EXIT_PROBE_FAILED = 3


def register(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser(
        "status",
        help="print each provider's state, reason and last-hour figures",
        description="Print the provider table: state, reason, since/until, last success, last-hour requests, "
        "success rate and p50/p95 latency; which provider the next request would use; probe tokens today.",
    )
    status.add_argument("--json", action="store_true", help="print the same data as GET /api/llm/status")
    status.set_defaults(run=run_status)

    selftest = commands.add_parser(
        "selftest",
        help="probe providers now with a tiny prompt (a passing probe brings a benched provider back)",
        description="Probe every provider not disabled (or --provider NAME, or --due: only those the "
        f"scheduled self-test would probe). Exit status {EXIT_PROBE_FAILED} if a probe failed, "
        f"{EXIT_CONFIG} on a configuration error.",
    )
    selftest.add_argument("--provider", help="probe only this provider")
    selftest.add_argument("--due", action="store_true", help="only benched, cooled-off and idle providers")
    selftest.add_argument("--json", action="store_true", help="print results as JSON")
    selftest.set_defaults(run=run_selftest)


def _services() -> Services | None:
    """The services with the LLM service built (no model is called); None after a configuration error."""
    from bot.services import CONFIG_ERRORS, open_services

    try:
        services = open_services()
        services.llm.service  # noqa: B018 (a bad router config is a configuration error here, not a traceback later)
        return services
    except CONFIG_ERRORS as exc:
        configuration_error(exc)
        return None


def run_status(args: argparse.Namespace) -> int:
    from bot.admin.status import provider_status

    services = _services()
    if services is None:
        return EXIT_CONFIG
    try:
        status = provider_status(services.llm.service, services.admin_settings)
    finally:
        services.close()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(format_status(status))
    return 0


def format_status(status: dict) -> str:
    header = (
        "PROVIDER",
        "STATE",
        "SINCE",
        "UNTIL",
        "LAST OK",
        "FAILS",
        "1H REQ",
        "1H OK",
        "P50 MS",
        "P95 MS",
        "REASON",
    )
    rows = [header]
    for p in status["providers"]:
        hour = p["last_hour"]
        rows.append(
            (
                p["provider"],
                p["state"],
                _when(p["since"]),
                _when(p["until"]),
                _when(p["last_success_at"]),
                str(p["consecutive_failures"]),
                str(hour["requests"]),
                "-" if hour["success_rate"] is None else f"{hour['success_rate']:.0%}",
                _num(hour["latency_ms"]["p50"]),
                _num(hour["latency_ms"]["p95"]),
                (p["reason"] or "")[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append("")
    lines.append(f"next request goes to: {status['next_provider'] or 'NO PROVIDER IS USABLE'}")
    for name, why in status["left_out"].items():
        lines.append(f"not configured: {name} ({why})")
    probes = status["probes_today"]
    lines.append(
        f"self-test probes today: {probes['probes']} calls, {probes['tokens']} tokens, ${probes['cost_usd']:.6f}"
    )
    for job, run in status["scheduler"].items():
        error = f" (error: {run['last_error']})" if run["last_error"] else ""
        lines.append(f"job {job}: last run {_when(run['last_started_at'])} by {run['holder']}{error}")
    if not status["scheduler"]:
        lines.append("no scheduled job has run yet: is `python -m bot clock` (or `serve`) running?")
    return "\n".join(lines)


def run_selftest(args: argparse.Namespace) -> int:
    from bot.admin.selftest import due_probes, probe_providers, requested_probes

    services = _services()
    if services is None:
        return EXIT_CONFIG
    service, settings = services.llm.service, services.admin_settings
    try:
        if args.provider and args.provider not in [d.name for d in service.deployments]:
            names = ", ".join(d.name for d in service.deployments)
            print(f"unknown provider {args.provider!r}; configured: {names}", file=sys.stderr)
            return EXIT_CONFIG
        if args.due:
            reasons = due_probes(service, settings, time.time())
        else:
            reasons = requested_probes(service, [args.provider] if args.provider else None)
        results = probe_providers(service, reasons, actor="probe:cli")
    finally:
        services.close()
    if args.json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        for r in results:
            detail = "ok" if r.outcome == "success" else f"FAILED {r.error_kind} (HTTP {r.http_status})"
            print(f"{r.provider:<10} {detail:<40} {r.latency_ms:7.0f} ms  {r.model}  -> {r.state_after}")
        if not results:
            print("nothing to probe")
    return 0 if all(r.outcome == "success" for r in results) else EXIT_PROBE_FAILED


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%m-%d %H:%M:%S")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
