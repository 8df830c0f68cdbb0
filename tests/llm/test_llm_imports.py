"""``import bot.llm`` and making an ``LLMService`` leave litellm unimported (it costs seconds of CPU); the
service's first call imports it, and every attempt still lands in ``llm_calls`` once, even when LiteLLM
reports a success late. Each test runs in a fresh interpreter: this one has imported litellm long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support import provider_env_for, write_router_config

REPO = Path(__file__).resolve().parents[2]

LLM_MODULES = ("errors", "error_kinds", "health", "router_config", "call_ledger", "service")

# LiteLLM's logging pool gets one thread, which the script keeps busy while a request succeeds: the
# success report queues behind it, the service stops waiting and records the attempt, then the
# report arrives and must change nothing.
LATE_REPORT = """
import json, sys, threading
from pathlib import Path
from bot.llm import LLMService, load_router_config
from bot.store import Store

config, db = sys.argv[1], sys.argv[2]
imported_before = "litellm" in sys.modules
llm = LLMService(load_router_config(config), Store(Path(db)))
imported_when_made = "litellm" in sys.modules
first = llm.complete([{"role": "user", "content": "Ma porte ne ferme plus"}])
imported_after = "litellm" in sys.modules
from litellm.litellm_core_utils.thread_pool_executor import executor

gate = threading.Event()
executor.submit(gate.wait)
late = llm.complete([{"role": "user", "content": "Le robinet goutte"}])
gate.set()
executor.submit(lambda: None).result()  # one thread, in order: the late report has been handled
print(json.dumps({
    "imported_before": imported_before,
    "imported_when_made": imported_when_made,
    "imported_after": imported_after,
    "first": [a.as_dict() | {"recorded_by": a.recorded_by} for a in first.attempts],
    "late": [a.as_dict() | {"recorded_by": a.recorded_by} for a in late.attempts],
    "rows": {name: llm.ledger.for_request(c.request_id) for name, c in (("first", first), ("late", late))},
}))
"""


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_importing_the_llm_layer_does_not_import_litellm() -> None:
    modules = ", ".join(f"bot.llm.{name}" for name in LLM_MODULES)
    result = run_python(
        f"import sys, bot.llm, {modules}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'litellm')\n"
        "assert not loaded, loaded"
    )
    assert result.returncode == 0, result.stderr


def test_the_first_call_imports_litellm_and_each_attempt_lands_once(tmp_path: Path, emulator) -> None:
    emulator.set_fault("claude", "server_error", times=1)
    config = write_router_config(tmp_path, callback_wait_s=0.2)
    env = {**provider_env_for(emulator), "LOGGING_EXECUTOR_MAX_THREADS": "1"}

    result = run_python(LATE_REPORT, str(config), str(tmp_path / "bot.db"), env=env)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["imported_before"], report["imported_when_made"], report["imported_after"]) == (False, False, True)
    # A failure is reported before the exception reaches the service; a success soon after.
    assert [(a["provider"], a["error_kind"], a["recorded_by"]) for a in report["first"]] == [
        ("claude", "server_error", "litellm_callback"),
        ("claude", None, "litellm_callback"),
    ]
    assert [(a["provider"], a["outcome"], a["recorded_by"]) for a in report["late"]] == [
        ("claude", "success", "llm_service")
    ]
    # Exactly one row per attempt, and the late report changed nothing.
    assert [(r["retry_index"], r["outcome"], r["recorded_by"]) for r in report["rows"]["first"]] == [
        (0, "failure", "litellm_callback"),
        (1, "success", "litellm_callback"),
    ]
    [late_row] = report["rows"]["late"]
    assert (late_row["outcome"], late_row["recorded_by"]) == ("success", "llm_service")
    assert late_row["cost_usd"] > 0 and late_row["input_tokens"] > 0  # the reply the service holds is priced
    assert emulator.call_count("claude") == 3
