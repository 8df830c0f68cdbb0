"""The admin side: what the people who run Djobea see and do.

Provider status and analytics are queries over the shared SQLite store (``llm_calls``,
``provider_health``, ``provider_events``); self-tests, alerts and retention run as scheduled jobs in
exactly one scheduler per deployment. The web routes (``bot.web.admin_api``, ``dashboard``,
``metrics``) and the CLI (``bot.cli.admin``, ``bot.cli.serve``) are thin layers over this package.
"""
