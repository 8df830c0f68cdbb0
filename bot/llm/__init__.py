"""The LLM layer: providers from router_config, their shared health, and ``LLMService.complete``.

Nothing above this package imports litellm, and importing this package does not either: litellm is
imported when the first ``LLMService`` builds its Router. It must then find its price map on disk:
without ``LITELLM_LOCAL_MODEL_COST_MAP`` it fetches it from the internet at import time.
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from bot.llm.errors import AllProvidersFailed, Attempt, LLMError, RouterConfigError  # noqa: E402
from bot.llm.router_config import RouterSetup, load_router_config  # noqa: E402
from bot.llm.service import Completion, LLMService  # noqa: E402

__all__ = [
    "AllProvidersFailed",
    "Attempt",
    "Completion",
    "LLMError",
    "LLMService",
    "RouterConfigError",
    "RouterSetup",
    "load_router_config",
]
