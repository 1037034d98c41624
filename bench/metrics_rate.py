"""/metrics as Prometheus reads it: two scrapes around a burst of grants, and what PromQL's
rate() and histogram_quantile() make of them, against what really happened.

Leash serves its HTTP app on a loopback port; the benchmark scrapes /metrics over HTTP, approves
`--n` grants of 2..5 s (each ends by expiry, revoked by its timer), waits for the revocations,
scrapes again, then checks: no counter or bucket went down, no `_created` series, each counter's
increase is the number of events made between the scrapes, and histogram_quantile over the
buckets' increase falls in the bucket that holds the true quantile (read from the database).

Run: `python -m bench.metrics_rate [--n 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bench.environment import describe
from bench.grant_latency import owned_roles, reset_schema
from bench.report import print_table, write
from bench.revoke_lag import approve_batch, revoked_at, start_leash
from bot.http.server import build_web_app
from cloud.sandbox import Sandbox

Key = tuple[str, tuple[tuple[str, str], ...]]
QUANTILES = (0.5, 0.9)


@dataclass(frozen=True)
class Scrape:
    at: float
    samples: dict[Key, float]  # counter and histogram samples
    created_lines: int


async def scrape(session: aiohttp.ClientSession, url: str) -> Scrape:
    async with session.get(url) as response:
        response.raise_for_status()
        body = await response.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        if family.type in ("counter", "histogram")
        for sample in family.samples
    }
    created = sum("_created" in line for line in body.splitlines())
    return Scrape(time.monotonic(), samples, created)


def increase(first: Scrape, second: Scrape, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return second.samples.get(key, 0.0) - first.samples.get(key, 0.0)


def buckets(first: Scrape, second: Scrape, name: str) -> list[tuple[float, float]]:
    """(upper bound, increase of the cumulative count) of each bucket, in order."""
    found = [
        (
            float(dict(labels)["le"]),
            second.samples[(sample, labels)] - first.samples.get((sample, labels), 0.0),
        )
        for sample, labels in second.samples
        if sample == f"{name}_bucket"
    ]
    return sorted(found)


def histogram_quantile(q: float, cumulative: Sequence[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile: linear within the bucket where the rank falls."""
    total = cumulative[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank:
            if math.isinf(upper):
                return lower  # the highest finite bound, as Prometheus answers
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return math.nan


def true_quantile(q: float, values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def bucket_of(value: float, cumulative: Sequence[tuple[float, float]]) -> tuple[float, float]:
    lower = 0.0
    for upper, _ in cumulative:
        if value <= upper:
            return lower, upper
        lower = upper
    return lower, math.inf


async def run(n: int, url: str) -> dict[str, Any]:
    await reset_schema(url)
    sandbox = Sandbox.start()
    leash = start_leash(url, sandbox)
    runner = web.AppRunner(build_web_app(leash.lifecycle, max_body_bytes=64 * 1024))
    try:
        await leash.start(scheduler=True, discover=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        metrics = f"http://127.0.0.1:{port}/metrics"
        async with aiohttp.ClientSession() as session:
            first = await scrape(session, metrics)
            expires = await approve_batch(leash, owned_roles(sandbox), n, 2)
            revoked = await revoked_at(url, list(expires))
            await asyncio.sleep(0.5)  # the timers' observations land just after their commits
            second = await scrape(session, metrics)
    finally:
        await runner.cleanup()
        await leash.close()
        sandbox.stop()
    lags = [(revoked[g] - expires[g]).total_seconds() for g in expires]
    return analyse(first, second, n, lags) | {
        "environment": describe(url, ("prometheus_client", "aiohttp"))
    }


def analyse(first: Scrape, second: Scrape, n: int, lags: Sequence[float]) -> dict[str, Any]:
    elapsed = second.at - first.at
    went_down = [
        f"{name}{dict(labels)}"
        for (name, labels), value in first.samples.items()
        if second.samples.get((name, labels), -1.0) < value
    ]
    expected = {
        ("leash_requests_decided_total", "approved"): n,
        ("leash_grant_transitions_total", "active"): n,
        ("leash_grant_transitions_total", "revoked"): n,
        ("leash_approval_wait_seconds_count", ""): n,
        ("leash_grant_apply_seconds_count", ""): n,
        ("leash_revoke_lag_seconds_count", ""): n,
    }
    counters = []
    for (name, state), events in expected.items():
        grew = increase(first, second, name, **({"state": state} if state else {}))
        counters.append(
            {
                "series": f'{name}{{state="{state}"}}' if state else name,
                "increase": grew,
                "rate_per_s": round(grew / elapsed, 4),
                "events": events,
                "ok": grew == events,
            }
        )
    cumulative = buckets(first, second, "leash_revoke_lag_seconds")
    quantiles = []
    for q in QUANTILES:
        truth = true_quantile(q, lags)
        estimate = histogram_quantile(q, cumulative)
        low, high = bucket_of(truth, cumulative)
        quantiles.append(
            {
                "q": q,
                "histogram_quantile_s": round(estimate, 3),
                "true_s": round(truth, 3),
                "bucket_s": [low, high],
                "ok": low <= estimate <= high,
            }
        )
    return {
        "parameters": {"n": n, "grant_seconds": "2..5", "interval_s": round(elapsed, 1)},
        "went_down": went_down,
        "created_lines": first.created_lines + second.created_lines,
        "counters": counters,
        "revoke_lag_quantiles": quantiles,
        "ok": not went_down
        and first.created_lines + second.created_lines == 0
        and all(c["ok"] for c in counters)
        and all(q["ok"] for q in quantiles),
    }


def print_report(report: dict[str, Any]) -> None:
    params = report["parameters"]
    print(
        f"metrics over two scrapes {params['interval_s']} s apart around {params['n']} grants "
        f"of {params['grant_seconds']} s (approved, expired, revoked)"
    )
    print_table(
        ("series", "increase", "rate/s", "events", "ok"),
        [
            (c["series"], c["increase"], c["rate_per_s"], c["events"], c["ok"])
            for c in report["counters"]
        ],
    )
    print_table(
        ("revoke lag", "histogram_quantile s", "true s", "bucket s", "ok"),
        [
            (f"q={q['q']}", q["histogram_quantile_s"], q["true_s"], q["bucket_s"], q["ok"])
            for q in report["revoke_lag_quantiles"]
        ],
    )
    print(
        f"went down: {report['went_down'] or 'nothing'}; _created lines: {report['created_lines']}"
    )
    print("OK" if report["ok"] else "NOT OK")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_rate", description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="grants between the scrapes (20)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'leash.db'}"
        report = asyncio.run(run(args.n, url))
    print_report(report)
    write("metrics_rate", report, args.output)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
