"""One markdown table (metric, value, baseline, machine) from every bench/results/*.json.

Run: `python -m bench.summary [--results DIR]` (the last step of `make bench`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report import RESULTS

Row = tuple[str, str, str]
Json = Mapping[str, Any]


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f} ms"


def _latency_row(rows: Sequence[Json], name: str) -> Json | None:
    return next((r for r in rows if r.get("operation", r.get("what")) == name), None)


def grant_latency(d: Json) -> list[Row]:
    rows = d.get("rows", [])
    out: list[Row] = []
    pairs = (
        ("leash approve -> grant active", "raw boto3 put_role_policy", "approve -> grant active"),
        ("leash revoke (manual) -> revoked", "raw boto3 delete_role_policy", "manual revoke"),
    )
    for leash, raw, label in pairs:
        ours, base = _latency_row(rows, leash), _latency_row(rows, raw)
        if ours is not None:
            out.append(
                (
                    f"{label}, p50 / p99",
                    f"{_ms(ours['p50_ms'])} / {_ms(ours['p99_ms'])}",
                    f"raw boto3 {raw.split()[-1]} p50 {_ms(base['p50_ms'] if base else None)}",
                )
            )
    return out


def slack_ack(d: Json) -> list[Row]:
    everything = _latency_row(d.get("acks", []), "all")
    if everything is None:
        return []
    p = d.get("parameters", {})
    return [
        (
            f"Slack ack, {p.get('n')} requests, {p.get('concurrency')} in flight, "
            f"cloud +{p.get('cloud_latency_s')} s, p50 / p99 / max",
            f"{_ms(everything['p50_ms'])} / {_ms(everything['p99_ms'])} / "
            f"{_ms(everything['max_ms'])}",
            "Slack's deadline 3000 ms",
        ),
        (
            f"Slack approve click -> grant active (cloud +{p.get('cloud_latency_s')} s), p50 / p99",
            _background(d),
            f"{len(d.get('failed_grants', {}))} grant(s) failed",
        ),
    ]


def _background(d: Json) -> str:
    active = _latency_row(d.get("background", []), "Approve click -> grant active (50 ms poll)")
    if active is None:
        return "-"
    return f"{_ms(active['p50_ms'])} / {_ms(active['p99_ms'])}"


def cloud_writes(d: Json) -> list[Row]:
    return [
        (
            f"cloud calls per {what} (writes / reads / sts)",
            " / ".join(str(d[f"per_{what}"][k]) for k in ("write", "read", "auth")),
            f"raw: {d[f'baseline_per_{what}']['write']} write",
        )
        for what in ("grant", "revoke")
    ]


def revoke_lag(d: Json) -> list[Row]:
    running, restart = d["running_lag_ms"], d["restart"]
    return [
        (
            "revoke lag after expiry, running, p50 / p95 / max",
            f"{_ms(running['p50'])} / {_ms(running['p95'])} / {_ms(running['max'])}",
            "-",
        ),
        (
            f"revoke lag after restart (down {restart['down_s']:.0f} s), from ready, p50 / max",
            f"{_ms(restart['lag_from_ready_ms']['p50'])} / "
            f"{_ms(restart['lag_from_ready_ms']['max'])}",
            "-",
        ),
    ]


def cold_start(d: Json) -> list[Row]:
    alone, embedded = d["median"]["alone"], d["median"]["embedded"]
    runs = d["parameters"]["runs"]
    return [
        (
            f"cold start to /readyz 200 (median of {runs}), alone / embedded sandbox",
            f"{alone['ready_s']:.2f} s / {embedded['ready_s']:.2f} s",
            "target alone <= 1.5 s",
        ),
        (
            "idle memory (VmRSS, median), alone / embedded sandbox",
            f"{alone['idle_rss_mib']:.0f} MiB / {embedded['idle_rss_mib']:.0f} MiB",
            "target alone <= 150 MiB",
        ),
    ]


def discovery(d: Json) -> list[Row]:
    p = d["parameters"]
    size = f"{p['accounts']} x {p['roles_per_account']}"
    runs = d.get("runs", [])
    cold = runs[0] if runs else None
    floor = next((r for r in runs if "ListRoles" in r["name"]), None)
    if cold is None:
        return []
    peak = cold.get("traced_peak_mib")
    return [
        (f"discovery {size}: wall", f"{cold['wall_s']:.1f} s", _floor(floor, "wall_s", "s")),
        (
            f"discovery {size}: cloud calls per identity",
            f"{cold['calls_per_identity']:.2f}",
            _floor(floor, "calls_per_identity", ""),
        ),
        (
            f"discovery {size}: peak memory",
            f"{cold['max_rss_mib']:.0f} MiB RSS"
            + ("" if peak is None else f", {peak:.0f} MiB traced"),
            "-",
        ),
    ]


def _floor(run: Json | None, key: str, unit: str) -> str:
    return "-" if run is None else f"ListRoles floor {run[key]:.2f} {unit}".rstrip()


def scan(d: Json) -> list[Row]:
    leash, raw = d["leash"], d["raw"]
    size = f"{d['accounts']} x {d['roles_per_account']}"
    return [
        (f"scan {size}: wall", f"{leash['scan_s']} s", f"raw Access Advisor {raw['scan_s']} s"),
        (
            f"scan {size}: cloud calls per identity",
            str(leash["calls_per_identity"]),
            f"raw {raw['calls_per_identity']}",
        ),
        (
            f"scan {size}: peak memory",
            f"+{leash['peak_rss_growth_mib']} MiB RSS during the scan",
            "-",
        ),
    ]


SECTIONS: dict[str, Callable[[Json], list[Row]]] = {
    "slack_ack": slack_ack,
    "grant_latency": grant_latency,
    "cloud_writes": cloud_writes,
    "revoke_lag": revoke_lag,
    "discovery": discovery,
    "scan": scan,
    "cold_start": cold_start,
}


def machine(env: Json) -> str:
    return f"{env.get('cpus')} CPU {env.get('machine')}, Py {env.get('python')}"


def summary(folder: Path) -> str:
    lines = ["| metric | value | baseline | machine |", "|---|---|---|---|"]
    dates: list[str] = []
    platform = "?"
    for name, section in SECTIONS.items():
        path = folder / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        dates.append(str(data.get("timestamp", data.get("at", "")))[:16])
        where = machine(data.get("environment", {}))
        platform = str(data.get("environment", {}).get("platform", platform))
        lines += [f"| {m} | {v} | {b} | {where} |" for m, v, b in section(data)]
    if dates:
        lines.append("")
        lines.append(f"Results from {min(dates)} to {max(dates)} UTC on {platform}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.summary", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    print(summary(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
