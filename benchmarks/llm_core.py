"""Benchmark of the LLM core against the provider emulator (loopback, fixed provider latency).

Prints, all measured in this one run:
  (a) LLMService overhead over a raw httpx POST to the same emulated endpoint, p50/p99;
  (b) p50 reply latency with Claude benched for credit, divided by Gemini as the only provider (goal <= 1.05);
  (c) failover time on the first credit error, 429, 5xx and timeout (extra time over Gemini alone);
  (d) calls Claude received during N requests after it was benched (goal 0).

    python benchmarks/llm_core.py [--latency 0.2] [--requests 50] [--benched-requests 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no fetch at import

import httpx  # noqa: E402
import yaml  # noqa: E402
from litellm import Router  # noqa: E402
from percentiles import percentile  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)

from bot.llm import LLMService, load_router_config  # noqa: E402
from bot.llm.router_config import DEFAULT_CONFIG_PATH  # noqa: E402
from bot.sandbox import ProviderEmulator  # noqa: E402
from bot.store import Store  # noqa: E402

MESSAGES = [{"role": "user", "content": "Bonjour, mon robinet fuit depuis ce matin, vous pouvez envoyer un plombier ?"}]


def timed(fn: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def env_for(emulator: ProviderEmulator, only: tuple[str, ...] = ("claude", "gemini", "openai")) -> dict[str, str]:
    names = {"claude": "ANTHROPIC", "gemini": "GEMINI", "openai": "OPENAI"}
    env = {}
    for provider in only:
        env[f"{names[provider]}_API_KEY"] = f"bench-key-{provider}"
        env[f"{names[provider]}_API_BASE"] = emulator.api_base(provider)
    return env


def service(workdir: Path, name: str, env: dict[str, str], timeout_s: float | None = None) -> LLMService:
    config_path = None
    if timeout_s is not None:
        config = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
        for entry in config["model_list"]:
            entry["litellm_params"]["timeout"] = timeout_s
        config_path = workdir / f"{name}.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return LLMService(load_router_config(config_path, env), Store(workdir / f"{name}.db"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2, help="emulated provider latency, seconds")
    parser.add_argument("--requests", type=int, default=50, help="requests per latency series")
    parser.add_argument("--benched-requests", type=int, default=1000, help="requests for (d)")
    parser.add_argument("--attempt-timeout", type=float, default=1.0, help="per-attempt timeout for (c)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="djobea-bench-"))

    with ProviderEmulator() as emulator:
        for provider in ("claude", "gemini", "openai"):
            emulator.set_latency(provider, args.latency)
        all_env = env_for(emulator)
        print(f"provider latency {args.latency * 1000:.0f} ms, {args.requests} requests per series")

        # (a) overhead over a raw POST
        raw_body = {
            "model": "claude-haiku-4-5",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": MESSAGES[0]["content"]}],
        }
        headers = {"x-api-key": "bench-key", "anthropic-version": "2023-06-01"}
        with httpx.Client() as client:

            def raw() -> None:
                client.post(f"{emulator.base_url}/v1/messages", json=raw_body, headers=headers).raise_for_status()

            timed(raw, 5)
            raw_ms = timed(raw, args.requests)
        llm = service(workdir, "a", all_env)
        router = Router(**llm.setup.router_kwargs())  # LiteLLM alone, to split its share from ours
        router_call = lambda: router.completion(model="claude", messages=MESSAGES, num_retries=0)  # noqa: E731
        timed(router_call, 5)
        router_ms = timed(router_call, args.requests)
        timed(lambda: llm.complete(MESSAGES), 5)
        ours_ms = timed(lambda: llm.complete(MESSAGES), args.requests)
        print("\n(a) LLMService vs raw httpx POST to the same endpoint (Claude)")
        for label, q in (("p50", 50), ("p99", 99)):
            raw_q, router_q, ours_q = percentile(raw_ms, q), percentile(router_ms, q), percentile(ours_ms, q)
            print(
                f"    {label}: raw {raw_q:6.1f} ms   LiteLLM Router alone {router_q:6.1f} ms"
                f"   LLMService {ours_q:6.1f} ms"
                f"   overhead {ours_q - raw_q:5.1f} ms (LiteLLM {router_q - raw_q:4.1f}, ours {ours_q - router_q:4.1f})"
                f"   ratio {ours_q / raw_q:.3f}"
            )

        # (b) Claude benched for credit vs Gemini alone
        gemini_only = service(workdir, "b-gemini", env_for(emulator, ("gemini",)))
        timed(lambda: gemini_only.complete(MESSAGES), 5)
        benched = service(workdir, "b-benched", all_env)
        emulator.set_fault("claude", "credit_exhausted")
        benched.complete(MESSAGES)  # learns the credit error; Claude is benched from here on
        gemini_ms, benched_ms = [], []
        for _ in range(args.requests):  # interleaved, so drift in the machine hits both series alike
            gemini_ms += timed(lambda: gemini_only.complete(MESSAGES), 1)
            benched_ms += timed(lambda: benched.complete(MESSAGES), 1)
        gemini_p50, benched_p50 = statistics.median(gemini_ms), statistics.median(benched_ms)
        print("\n(b) p50 with Claude benched for credit / p50 with Gemini as the only provider")
        print(
            f"    Gemini alone {gemini_p50:.1f} ms   Claude benched {benched_p50:.1f} ms"
            f"   ratio {benched_p50 / gemini_p50:.3f} (goal <= 1.05)"
        )

        # (c) failover time on the first failure of each kind
        emulator.clear_fault("claude")
        baseline = gemini_p50
        print(
            f"\n(c) first-failure failover (Claude fails, Gemini answers); cost over Gemini alone ({baseline:.0f} ms)"
        )
        for fault in ("credit_exhausted", "rate_limited", "server_error", "hang"):
            samples = []
            for run in range(5):
                fresh = service(workdir, f"c-{fault}-{run}", all_env, timeout_s=args.attempt_timeout)
                fresh.prepare()  # the Router is built on first use: not part of the failover
                emulator.set_fault("claude", fault)
                samples += timed(lambda: fresh.complete(MESSAGES), 1)  # noqa: B023
                emulator.clear_fault("claude")
            label = "timeout" if fault == "hang" else fault
            note = f" (per-attempt timeout {args.attempt_timeout:.1f} s)" if fault == "hang" else ""
            note += " (includes one quick retry)" if fault == "server_error" else ""
            total = statistics.median(samples)
            print(f"    {label:17s} total {total:7.1f} ms   failover cost {total - baseline:7.1f} ms{note}")

        # (d) calls to a benched provider
        for provider in ("claude", "gemini", "openai"):
            emulator.set_latency(provider, 0)
        emulator.set_fault("claude", "credit_exhausted")
        d_llm = service(workdir, "d", all_env)
        d_llm.complete(MESSAGES)
        before = emulator.call_count("claude")
        started = time.perf_counter()
        for _ in range(args.benched_requests):
            d_llm.complete(MESSAGES)
        elapsed = time.perf_counter() - started
        print(
            f"\n(d) calls Claude received during {args.benched_requests} requests after it was benched: "
            f"{emulator.call_count('claude') - before} (goal 0); {args.benched_requests / elapsed:.0f} req/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
