"""The project installs as a package: pins agree with requirements.txt, every subpackage ships, and an installed
``djobea`` runs outside the checkout with the router config it carries (packages: setup.py).

The install is offline: a fresh venv sees this environment's packages through a ``.pth`` file, and pip builds with
the setuptools installed here (``--no-build-isolation``) from a copy of the sources, so the checkout gets no
``build/`` or ``*.egg-info``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from bot.llm.router_config import load_router_config

ROOT = Path(__file__).resolve().parents[1]
# requirements.txt pins these for tests, lint and builds only; everything else it pins is a runtime dependency.
TEST_TOOLS = {"pytest", "pytest-timeout", "responses", "ruff", "schemathesis", "hypothesis", "jsonschema", "py-spy"}
BUILD_TOOLS = {"setuptools", "wheel"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lines: list[str]) -> dict[str, str]:
    """{normalized name: version} of ``name==version`` lines; anything else there is refused."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)", line)
        assert match, f"not an exact pin: {line!r}"
        found[normalized(match[1])] = match[2]
    return found


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_pyproject_dependencies_are_the_runtime_pins_of_requirements() -> None:
    required = pins((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())
    project = pyproject()["project"]

    runtime = {name: v for name, v in required.items() if name not in TEST_TOOLS | BUILD_TOOLS}
    assert pins(project["dependencies"]) == runtime
    test_extra = pins(project["optional-dependencies"]["test"])
    assert test_extra == {name: v for name, v in required.items() if name in TEST_TOOLS}


def test_console_script_is_python_m_bot() -> None:
    assert pyproject()["project"]["scripts"] == {"djobea": "bot.cli:main"}


def shipped(tree: Path) -> set[str]:
    return {
        str(path.relative_to(tree))
        for path in tree.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.mark.slow
def test_installed_package_runs_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("bot", "router_config"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, source)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=30,
    ).stdout.strip()  # fmt: skip
    # The dependencies (and pip, setuptools) are those of this environment, seen through a .pth file.
    Path(purelib, "this-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    assert install.returncode == 0, (
        f"pip install failed (setuptools below 70.1 needs `wheel` to build; requirements.txt pins setuptools):\n"
        f"{install.stdout}\n{install.stderr}"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ROUTER_CONFIG")}
    djobea = venv / "bin" / "djobea"

    helped = subprocess.run([djobea, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)
    # The router config the installed package loads by default, validated (no key set: every deployment left out).
    where = subprocess.run(
        [python, "-c", "import bot, json; from bot.llm.router_config import load_router_config as load;"
         " setup = load(env={}); print(json.dumps([bot.__file__, str(setup.source), sorted(setup.left_out)]))"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert helped.returncode == 0 and "serve" in helped.stdout and "ask" in helped.stdout, helped.stderr
    assert where.returncode == 0, where.stderr
    package_file, config_path, left_out = json.loads(where.stdout)
    installed = Path(purelib) / "bot"
    assert Path(package_file) == installed / "__init__.py"
    assert Path(config_path) == installed / "router_config" / "providers.yaml"
    assert Path(config_path).read_bytes() == (ROOT / "router_config" / "providers.yaml").read_bytes()
    assert left_out == sorted(load_router_config(ROOT / "router_config" / "providers.yaml", env={}).left_out)
    # Every file of the checkout's bot/ (code, templates, data), and the router config beside them.
    assert shipped(installed) == shipped(source / "bot") | {"router_config/providers.yaml"}
