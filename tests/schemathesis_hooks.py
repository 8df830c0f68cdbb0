"""Schemathesis hooks (loaded by ``schemathesis.toml`` at the top of the checkout): what the OpenAPI document
cannot say, told to the fuzzer.

``GET /api/llm/analytics`` has two rules between its parameters that JSON Schema cannot state: ``since`` must
be before ``until`` (``until`` defaults to now, ``since`` to 24 h before ``until``), and the range must fit in
2000 buckets. Every parameter on its own is declared exactly; a generated query whose *valid* times break
one of these rules is dropped, since the server rightly answers it 400. A query with a time the server cannot
read is kept: there the document and the server must agree on their own.
"""

from __future__ import annotations

import time

import schemathesis

from bot.admin.analytics import BUCKETS, AnalyticsRangeError, TimeRange
from bot.contracts import ContractViolation
from bot.contracts.admin import AnalyticsQuery


# A case hook: the coverage phase applies case hooks only, the fuzzing phase both kinds.
@schemathesis.hook("filter_case").apply_to(path="/api/llm/analytics")
def analytics_range_is_answerable(context, case) -> bool:
    try:
        parsed = AnalyticsQuery.parse({name: str(value) for name, value in (case.query or {}).items()})
    except ContractViolation:
        return True  # the server must refuse it, as the document does
    since, until = parsed.span(time.time())
    try:
        TimeRange(since, until, BUCKETS[parsed.bucket])
    except AnalyticsRangeError:
        return False
    return True


@schemathesis.hook("filter_case").apply_to(path_regex=r"^/api/requests")
def requests_range_is_answerable(context, case) -> bool:
    """``since`` must come before ``until``, which JSON Schema cannot state: cases breaking only that are
    dropped; a query with a time the server cannot read is kept (it must be refused as documented)."""
    query = case.query or {}
    try:
        return float(query["since"]) < float(query["until"])
    except (KeyError, TypeError, ValueError):
        return True
