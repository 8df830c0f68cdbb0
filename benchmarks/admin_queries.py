"""Benchmark of the admin read paths on a large ledger: status, analytics and /metrics.

Seeds ``--rows`` llm_calls rows spread over ``--days`` days (three providers, several purposes, some
failures), then times each admin route through Flask's test client against the same app. The
baseline, measured in the same run, is ``GET /api/llm/health`` (one health read per provider).

    python benchmarks/admin_queries.py [--rows 300000] [--days 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no fetch at import

from bot.web import create_app, services_of  # noqa: E402

TOKEN = "bench-admin-token"
PROVIDERS = ("claude", "gemini", "openai")
PURPOSES = ("chat", "chat", "chat", "suggestions", "selftest")
KINDS = ("rate_limited", "server_error", "timeout", "credit_exhausted")


def seed(store, rows: int, days: float, now: float) -> None:
    rng = random.Random(7)
    batch = []
    for _ in range(rows):
        provider = rng.choices(PROVIDERS, weights=(6, 3, 1))[0]
        failed = rng.random() < 0.08
        batch.append(
            {
                "id": uuid.uuid4().hex,
                "request_id": uuid.uuid4().hex,
                "started_at": now - rng.random() * days * 86400,
                "purpose": rng.choice(PURPOSES),
                "provider": provider,
                "model": f"{provider}/model",
                "deployment_id": provider,
                "outcome": "failure" if failed else "success",
                "error_kind": rng.choice(KINDS) if failed else None,
                "http_status": 500 if failed else 200,
                "latency_ms": rng.lognormvariate(6, 0.4),
                "input_tokens": rng.randint(50, 900),
                "output_tokens": rng.randint(5, 300),
                "cost_usd": rng.random() / 1000,
                "fallback_depth": PROVIDERS.index(provider),
                "retry_index": 0,
                "error_message": None,
                "recorded_by": "benchmark",
            }
        )
    store.db["llm_calls"].insert_all(batch, batch_size=5000)
    store.db.conn.commit()


def timed_ms(client, path: str, repeat: int) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    samples, status = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        status = client.get(path, headers=headers).status_code
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="djobea-admin-bench-"))
    app = create_app(
        {
            "DATABASE_PATH": str(workdir / "bot.db"),
            "PROVIDER_ENV": {"ADMIN_API_TOKEN": TOKEN, "WHATSAPP_WORKER_THREADS": "0"},
        }
    )
    services = services_of(app)
    now = time.time()
    started = time.perf_counter()
    seed(services.store, args.rows, args.days, now)
    print(f"seeded {args.rows} llm_calls rows over {args.days:g} days in {time.perf_counter() - started:.1f} s")
    client = app.test_client()

    first_metrics, _ = timed_ms(client, "/metrics", 1)  # folds old rows into running totals, once
    baseline, _ = timed_ms(client, "/api/llm/health", args.repeat)
    day, week = now - 86400, now - 7 * 86400
    routes = [
        ("GET /api/llm/status", "/api/llm/status"),
        ("GET /api/llm/analytics (24 h, hourly)", f"/api/llm/analytics?since={day:.0f}&bucket=hour"),
        ("GET /api/llm/analytics (7 days, daily)", f"/api/llm/analytics?since={week:.0f}&bucket=day"),
        ("GET /metrics", "/metrics"),
    ]
    print(f"\nbaseline GET /api/llm/health: {baseline:.1f} ms (median of {args.repeat})")
    print(f"first GET /metrics (one-time roll-up of old rows): {first_metrics:.0f} ms")
    for label, path in routes:
        median, status = timed_ms(client, path, args.repeat)
        print(f"{label:42s} {median:8.1f} ms   x{median / baseline:7.1f} of baseline   (HTTP {status})")
    services.llm.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
