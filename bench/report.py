"""What the newer benchmarks share: a plain text table, percentiles of a sample, JSON output."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.grant_latency import percentile

RESULTS = Path(__file__).parent / "results"


def spread(values: Sequence[float]) -> dict[str, float | int]:
    """n, p50, p95, max of `values` (rounded to the millisecond when they are seconds)."""
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "max": round(max(values, default=float("nan")), 3),
    }


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print `rows` under `header`: the first column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        return " ".join([first, *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))])

    print(line(cells[0]))
    print("-" * len(line(cells[0])))
    for row in cells[1:]:
        print(line(row))


def write(name: str, report: dict[str, Any], output: Path | None = None) -> Path:
    """Write `report` (stamped with the benchmark's name and the time) as JSON; return the path."""
    path = output or RESULTS / f"{name}.json"
    stamped = {
        "benchmark": name,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        **report,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamped, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path
