"""The shape of the code: which modules import which, and what each command loads.

- The import graph, read from the source with ``ast`` (every ``import`` statement, at module level, in
  functions and under ``TYPE_CHECKING`` alike): ``bot.llm`` imports nothing of the upper layers nor of the
  sandbox; only the composition root (``bot.services``) imports the sandbox; the web areas (blueprints)
  never import one another, nor the package that registers them all.
- Each command that serves no HTTP (ask, chat, worker, clock, status, selftest), run for real in a fresh
  interpreter through ``bot.cli.main``, never imports Flask (nor werkzeug); ``--help`` and ``status`` never
  import LiteLLM either.

What each kind proves, and what it does not: the graph tests hold for every path through our own modules,
but say nothing of what a third-party library imports. The command tests see everything a process loaded,
libraries included, but only on the path that run took (these arguments, a working configuration; an error
path or another option is not covered) and only once the command has returned.
"""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from bot.inbound import InboundMessage, InboundQueue
from bot.llm import load_router_config
from bot.llm.service import ROUTER_SETTINGS_KNOWN
from bot.sandbox.scripted_model import djobea_model_reply
from bot.store import Store

REPO = Path(__file__).resolve().parents[1]
PROVIDER_KEYS = ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY")


# --- the import graph ----------------------------------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in (REPO / "bot").rglob("*.py")}


def imports_of(module: str) -> set[str]:
    """Every module ``module`` imports, wherever the statement is. ``from pkg import name`` counts as importing
    ``pkg.name`` when that is a module of ours, else as importing ``pkg``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def within(name: str, areas: Iterable[str]) -> bool:
    return any(name == area or name.startswith(area + ".") for area in areas)


def makes_a_blueprint(module: str) -> bool:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Blueprint" for n in ast.walk(tree))


# The web areas: every module of bot.web that makes a Blueprint (helpers such as errors, chat_input or limits
# make none, and any area may import them).
BLUEPRINTS = {module for module in MODULES if within(module, ["bot.web"]) and makes_a_blueprint(module)}


def test_the_graph_is_read_from_every_kind_of_import_statement() -> None:
    # Guards against a reader that sees nothing: a module-level, a function-level and a TYPE_CHECKING import.
    assert "bot.web.chat_input" in GRAPH["bot.web.chat_api"]
    assert "bot.services" in GRAPH["bot.cli.ask"]  # imported inside its run function
    assert "bot.services" in GRAPH["bot.web.webhooks"]  # imported under TYPE_CHECKING
    assert "bot.sandbox" in GRAPH["bot.services"]
    areas = ("webhooks", "chat_api", "suggestions_api", "admin_api", "dashboard", "metrics")
    assert {f"bot.web.{area}" for area in areas} <= BLUEPRINTS
    assert not BLUEPRINTS & {"bot.web", "bot.web.errors", "bot.web.chat_input", "bot.web.limits"}


def test_the_llm_layer_imports_no_upper_layer_and_no_test_double() -> None:
    forbidden = ("bot.sandbox", "bot.web", "bot.whatsapp", "bot.services", "bot.cli")
    found = {
        (module, target)
        for module, targets in GRAPH.items()
        if within(module, ["bot.llm"])
        for target in targets
        if within(target, forbidden)
    }
    assert found == set()


def test_only_the_composition_root_imports_the_sandbox() -> None:
    found = {
        (module, target)
        for module, targets in GRAPH.items()
        if not within(module, ["bot.sandbox", "bot.services"])
        for target in targets
        if within(target, ["bot.sandbox"])
    }
    assert found == set()


def test_blueprints_import_no_other_blueprint() -> None:
    found = {
        (module, target)
        for module in BLUEPRINTS
        for target in GRAPH[module]
        # ``bot.web`` itself is the factory that imports every blueprint.
        if target == "bot.web" or (within(target, BLUEPRINTS) and not within(target, [module]))
    }
    assert found == set()


def test_router_settings_checked_without_litellm_are_ones_its_router_takes(provider_env: dict[str, str]) -> None:
    """``LLMService`` builds its Router at once for any other router setting, so LiteLLM refuses a misspelt one
    at start; these few it lets through unbuilt must then be settings LiteLLM's Router accepts."""
    from litellm import Router

    setup = load_router_config(env=provider_env)
    assert set(setup.router_settings) >= ROUTER_SETTINGS_KNOWN
    Router(**setup.router_kwargs())


# --- what each command imports ------------------------------------------------------------------------------

# Runs ``bot.cli.main`` with the given arguments in this fresh interpreter, then writes its exit status and
# whether Flask (or werkzeug) and LiteLLM were ever imported into the process.
PROBE = """
import json, sys
from bot.cli import main
try:
    status = main(sys.argv[2:])
except SystemExit as exc:
    status = exc.code
tops = {name.partition(".")[0] for name in sys.modules}
loaded = {top: top in tops for top in ("flask", "werkzeug", "litellm")}
with open(sys.argv[1], "w") as out:
    json.dump({"status": status, **loaded}, out)
"""


def probe_command(args: list[str], env: dict[str, str], out: Path) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS and not k.endswith("_API_BASE")}
    return subprocess.Popen(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=REPO,
        env={**clean, "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str], out: Path) -> dict:
    stdout, stderr = process.communicate(timeout=120)
    assert out.exists(), f"exit {process.returncode}\n{stdout}\n{stderr}"
    return json.loads(out.read_text()) | {"stdout": stdout, "stderr": stderr}


def run_command(args: list[str], env: dict[str, str], tmp_path: Path) -> dict:
    out = tmp_path / "loaded.json"
    return finished(probe_command(args, env, out), out)


@pytest.fixture
def database(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_PATH": str(tmp_path / "bot.db")}


def test_help_imports_neither_flask_nor_litellm(database: dict[str, str], tmp_path: Path) -> None:
    loaded = run_command(["--help"], database, tmp_path)
    assert (loaded["status"], loaded["flask"], loaded["werkzeug"], loaded["litellm"]) == (0, False, False, False)
    assert "selftest" in loaded["stdout"]


def test_status_imports_neither_flask_nor_litellm(database: dict[str, str], tmp_path: Path) -> None:
    loaded = run_command(["status"], database, tmp_path)  # no key: sandbox mode, with an emulator of its own
    assert (loaded["status"], loaded["flask"], loaded["werkzeug"], loaded["litellm"]) == (0, False, False, False)
    assert "next request goes to: claude" in loaded["stdout"]


def test_ask_and_selftest_call_providers_without_flask(
    database: dict[str, str], provider_env: dict[str, str], emulator, tmp_path: Path
) -> None:
    env = {**database, **provider_env}
    asked = run_command(["ask", "Bonjour"], env, tmp_path)
    probed = run_command(["selftest"], env, tmp_path)

    # LiteLLM is seen loaded (they did call providers), Flask is not.
    assert (asked["status"], asked["litellm"], asked["flask"], asked["werkzeug"]) == (0, True, False, False)
    assert (probed["status"], probed["litellm"], probed["flask"], probed["werkzeug"]) == (0, True, False, False)
    assert emulator.call_count("claude") == 2  # the question and claude's probe


def test_worker_answers_a_stored_message_without_flask(
    database: dict[str, str], provider_env: dict[str, str], emulator, tmp_path: Path
) -> None:
    emulator.set_responder(None, djobea_model_reply)
    InboundQueue(Store(database["DATABASE_PATH"])).enqueue(
        InboundMessage(
            message_sid="SM" + "1" * 32,
            customer_id="+237699000009",
            body="Bonjour, mon robinet fuit",
            from_number="whatsapp:+237699000009",
        )
    )

    loaded = run_command(["worker", "--drain"], {**database, **provider_env}, tmp_path)

    assert (loaded["status"], loaded["flask"], loaded["werkzeug"]) == (0, False, False)
    assert "answered 1 message(s)" in loaded["stderr"]


def test_terminal_chat_answers_without_flask(tmp_path: Path) -> None:
    # No key: the sandbox's scripted model, in an emulator the command starts itself.
    loaded = run_command(["chat", "--db", str(tmp_path / "chat.db"), "-m", "Bonjour"], {}, tmp_path)

    assert (loaded["status"], loaded["flask"], loaded["werkzeug"]) == (0, False, False)
    assert "djobea> " in loaded["stdout"]


def test_clock_runs_its_jobs_without_flask(
    database: dict[str, str], provider_env: dict[str, str], emulator, tmp_path: Path
) -> None:
    out = tmp_path / "loaded.json"
    clock = probe_command(["clock"], {**database, **provider_env}, out)
    try:
        # A job's "run claimed" line: the scheduler has started and runs its jobs, in threads of their own (a
        # SIGTERM the kernel handed to one of them used to wait for the scheduler's next job).
        for line in clock.stderr:
            if "run claimed" in line:
                break
        else:
            pytest.fail("the clock never ran a job")
        clock.send_signal(signal.SIGTERM)
        loaded = finished(clock, out)
    finally:
        clock.kill()

    assert (loaded["status"], loaded["flask"], loaded["werkzeug"]) == (0, False, False)


def web_process_report(script: str, database: Path, env: dict[str, str]) -> dict:
    """Run ``script`` (a web process's work on ``database`` with ``env``) in a fresh interpreter; its JSON report."""
    result = subprocess.run(
        [sys.executable, "-c", script, str(database), json.dumps(env)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# Builds the app as gunicorn's worker does (create_app), reads what an operator reads, then reports whether
# LiteLLM was ever imported into the process.
WEB_READS = """
import json, sys
from bot.web import create_app
app = create_app({"DATABASE_PATH": sys.argv[1], "PROVIDER_ENV": json.loads(sys.argv[2])})
client = app.test_client()
auth = {"Authorization": "Bearer " + json.loads(sys.argv[2])["ADMIN_API_TOKEN"]}
paths = ("/", "/api/llm/health", "/api/llm/status", "/api/llm/analytics", "/api/llm/providers", "/metrics", "/admin")
statuses = {path: client.get(path, headers=auth).status_code for path in paths}
print(json.dumps({"statuses": statuses, "litellm": "litellm" in {m.partition(".")[0] for m in sys.modules}}))
"""


def test_a_web_process_reads_health_status_and_analytics_without_litellm(
    provider_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**provider_env, "ADMIN_API_TOKEN": "admin-token-for-tests-0123456789", "WHATSAPP_WORKER_THREADS": "2"}
    report = web_process_report(WEB_READS, tmp_path / "bot.db", env)

    assert set(report["statuses"].values()) == {200}, report
    assert report["litellm"] is False  # the Router, and LiteLLM with it, waits for the first model call


# Stores one signed WhatsApp message as a web process of the Procfile does (no worker threads), then reports
# whether LangChain's tracing (LangSmith, 20 MB) or its prompt and parser modules were ever imported.
WEB_STORES = """
import json, sys
from twilio.request_validator import RequestValidator
from bot.web import create_app
env = json.loads(sys.argv[2])
app = create_app({"DATABASE_PATH": sys.argv[1], "PROVIDER_ENV": env})
form = {"MessageSid": "SM" + "0" * 32, "From": "whatsapp:+237650000001", "To": "whatsapp:+237600000000",
        "Body": "J'ai une fuite d'eau", "AccountSid": env["TWILIO_ACCOUNT_SID"]}
url = "http://localhost/webhook/whatsapp"
signature = RequestValidator(env["TWILIO_AUTH_TOKEN"]).compute_signature(url, form)
status = app.test_client().post(url, data=form, headers={"X-Twilio-Signature": signature}).status_code
heavy = ("langsmith", "langchain_core.prompts", "langchain_core.output_parsers", "langchain_core.tracers")
print(json.dumps({"status": status, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


def test_a_web_process_stores_whatsapp_messages_without_langchain_tracing(
    provider_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **provider_env,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_AUTH_TOKEN": "token-for-tests",
        "TWILIO_WHATSAPP_NUMBER": "whatsapp:+237600000000",
        "WHATSAPP_WORKER_THREADS": "0",
    }
    assert web_process_report(WEB_STORES, tmp_path / "bot.db", env) == {"status": 200, "loaded": []}
    assert InboundQueue(Store(tmp_path / "bot.db")).counts() == {"pending": 1}
