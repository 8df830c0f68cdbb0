"""``python -m bot artisans import|list`` and ``python -m bot chat --as-artisan``, run as the operator runs them
(a fresh interpreter on a database file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CSV = "name,whatsapp,trades,quartiers\nAlain,699 00 00 11,plomberie,Akwa;Deido\nBruno,+237699000012,électricité,\n"


def bot(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_AUTH_TOKEN", "_ACCOUNT_SID"))}
    env.update(DATABASE_PATH=str(db), LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_then_list(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    (tmp_path / "artisans.csv").write_text(CSV, encoding="utf-8")

    imported = bot("artisans", "import", str(tmp_path / "artisans.csv"), db=db)
    listed = bot("artisans", "list", "--json", db=db)

    assert imported.returncode == 0, imported.stderr
    assert "imported 2 artisan(s)" in imported.stdout
    artisans = {a["name"]: a for a in json.loads(listed.stdout)["artisans"]}
    assert artisans["Alain"]["whatsapp"] == "+237699000011" and artisans["Alain"]["quartiers"] == ["Akwa", "Deïdo"]
    assert artisans["Bruno"]["trades"] == ["electricite"] and artisans["Bruno"]["quartiers"] == []


def test_an_import_with_a_bad_line_adds_nothing_and_names_it(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    (tmp_path / "bad.csv").write_text(CSV + "Carine,not a number,plomberie,\n", encoding="utf-8")

    refused = bot("artisans", "import", str(tmp_path / "bad.csv"), db=db)

    assert refused.returncode == 4 and "line 4" in refused.stderr
    assert json.loads(bot("artisans", "list", "--json", db=db).stdout) == {"artisans": []}


def test_chat_as_an_artisan_goes_to_dispatch(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    (tmp_path / "artisans.csv").write_text(CSV, encoding="utf-8")
    bot("artisans", "import", str(tmp_path / "artisans.csv"), db=db)

    answered = bot("chat", "--db", str(db), "--as-artisan", "699000011", "-m", "OUI", db=db)
    unknown = bot("chat", "--db", str(db), "--as-artisan", "+237655555555", "-m", "OUI", db=db)

    assert answered.returncode == 0, answered.stderr
    assert "aucune demande en attente" in answered.stdout and "[dispatch]" in answered.stdout
    assert unknown.returncode == 2 and "not an artisan" in unknown.stderr
