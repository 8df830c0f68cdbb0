"""The deployment files agree with the Procfile and keep every process on one SQLite file.

No docker engine here, so nothing is built: compose.yaml and the Dockerfile are read and compared with the
Procfile, and the Prometheus rules (and the dashboard's queries) go through ``promtool`` when Debian's
``prometheus`` package is installed.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def shell_line(command: list[str] | str) -> str:
    """The command line a process runs: ``sh -c "exec LINE"`` is LINE (``exec`` only hands PID 1 to it)."""
    if isinstance(command, str):
        return command
    if command[:2] == ["sh", "-c"] and len(command) == 3:
        return command[2].removeprefix("exec ")
    return shlex.join(command)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_runs_the_procfile_processes() -> None:
    services = compose()["services"]

    assert set(services) == set(procfile()) == {"web", "worker"}
    for name, line in procfile().items():
        # $$ is compose's escape for a $ left to the container's shell, as the Procfile's ${PORT:-8000} is.
        assert shell_line(services[name]["command"]).replace("$$", "$") == line, name


def test_web_and_worker_share_one_named_volume_holding_the_database() -> None:
    spec = compose()
    mounts = {}
    for name, service in spec["services"].items():
        database = service["environment"]["DATABASE_PATH"]
        [mount] = [v for v in service["volumes"] if v.split(":")[1] == posixpath.dirname(database)]
        volume = mount.split(":")[0]
        assert volume in spec["volumes"], f"{name}: {volume} is not a named volume"  # not a host path
        mounts[name] = (volume, database)
        assert service.get("env_file") == ".env"

    assert mounts["web"] == mounts["worker"]


def test_dockerfile_runs_the_web_line_as_a_user_who_is_not_root() -> None:
    instructions = dockerfile()
    [base] = [args for op, args in instructions if op == "FROM"]
    [cmd] = [json.loads(args) for op, args in instructions if op == "CMD"]
    user = [args for op, args in instructions if op == "USER"][-1].split(":")[0]
    env = " ".join(args for op, args in instructions if op == "ENV")
    [healthcheck] = [args for op, args in instructions if op == "HEALTHCHECK"]

    assert base == "python:3.11-slim"
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec ")  # gunicorn is PID 1 and gets docker's SIGTERM
    assert shell_line(cmd) == procfile()["web"]
    assert user not in ("root", "0")
    assert any(op == "RUN" and "pip install -r requirements.txt" in args for op, args in instructions)
    assert "DATABASE_PATH=/data/bot.db" in env
    assert posixpath.dirname(compose()["services"]["web"]["environment"]["DATABASE_PATH"]) == "/data"
    assert "127.0.0.1:%s/'" in healthcheck  # liveness is GET /


def test_dockerignore_keeps_secrets_and_databases_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()

    assert {".env", ".git", ".venv", "instance", "*.db"} <= set(ignored)


def test_dashboard_panels_query_prometheus() -> None:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]

    assert dashboard["uid"] and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"} for p in panels)
    assert all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in panels)


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return found


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    tool = promtool()

    checked = subprocess.run(
        [tool, "check", "rules", "prometheus-alerts.yml"], cwd=DEPLOY, capture_output=True, text=True, timeout=60
    )
    tested = subprocess.run(
        [tool, "test", "rules", "prometheus-alerts.test.yml"], cwd=DEPLOY, capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    tool = promtool()
    # Grafana's $__rate_interval becomes a plain range; each query becomes a recording rule promtool parses.
    rules = [{"record": f"dashboard:query_{i}", "expr": expr.replace("$__rate_interval", "5m")}
             for i, expr in enumerate(dashboard_expressions())]  # fmt: skip
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")

    checked = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)

    assert checked.returncode == 0, checked.stdout + checked.stderr
