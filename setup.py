"""The dynamic part of pyproject.toml's setuptools configuration (metadata and pins are there).

Every package under ``bot/`` is found, so a new one ships without a list to update; and the default router
config at the top of the checkout is carried inside the package as ``bot/router_config/``, where
``bot.llm.router_config.DEFAULT_CONFIG_PATH`` finds it when no checkout is around.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["bot", "bot.*"]), "bot.router_config"],
    package_dir={"bot.router_config": "router_config"},
)
