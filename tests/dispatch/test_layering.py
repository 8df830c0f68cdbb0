"""The dispatch domain sits below the web layer: importing it loads neither Flask nor the web, WhatsApp-worker or
sandbox packages, nor LiteLLM (run in a fresh interpreter, which sees everything that import loaded)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bot_dispatch_imports_no_upper_layer() -> None:
    code = (
        "import json, sys, bot.dispatch, bot.messaging.templates\n"
        "bad = ('flask', 'werkzeug', 'litellm', 'bot.web', 'bot.whatsapp', 'bot.sandbox', 'bot.cli', 'bot.services')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in bad or m.startswith(bad))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []
