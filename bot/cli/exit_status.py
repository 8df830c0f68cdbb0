"""How a command ends when its configuration is wrong: ``configuration error: ...`` on stderr, exit status 2.

The errors themselves are raised where settings are parsed and things opened (``bot.services.CONFIG_ERRORS``).
"""

from __future__ import annotations

import sys

EXIT_CONFIG = 2


def configuration_error(exc: Exception) -> int:
    print(f"configuration error: {exc}", file=sys.stderr)
    return EXIT_CONFIG
