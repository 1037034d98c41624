"""Cold start of `leash serve --no-console` to /readyz 200, and the idle process's memory.

Two set-ups side by side, each a child process on SQLite:
- **alone**: `leash serve` with LEASH_CLOUD=aws against a sandbox moto server already running
  in this (the bench's) process, as `leash sandbox` in another terminal would be: the child's
  time and memory are Leash's alone. The targets (issue 19) are /readyz within 1.5 s and an
  idle RSS of at most 150 MiB on a 2-core machine.
- **embedded**: `leash serve --sandbox`, which imports moto and seeds the demo organisation
  in its own process first.
Each set-up starts once unmeasured on its database (the migrations of a first install), then
`--runs` times on that database, as a restart would; the medians are compared.
Run: `python -m bench.cold_start [--runs 5] [--idle 5]` (`make bench`).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.environment import describe
from bench.report import print_table, write
from cloud.sandbox import Sandbox

POLL_SECONDS = 0.01
SERVING = b"Leash is serving"  # printed once the first discovery is done
READY_WITHIN = 120.0


@dataclass(frozen=True, slots=True)
class Start:
    ready_s: float  # spawn -> first /readyz 200
    serving_s: float | None  # spawn -> "Leash is serving" (after the first discovery)
    idle_rss_mib: float  # VmRSS after `idle` seconds of nothing
    peak_rss_mib: float  # VmHWM at the same moment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def status_mib(pid: int, field: str) -> float:
    """A `VmRSS:`-style line of /proc/<pid>/status, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


class Watch:
    """Drain the child's output in a thread; note when the serving line appears."""

    def __init__(self, lines: Iterable[bytes], started: float) -> None:
        self.serving_s: float | None = None
        self._started = started
        self._thread = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self._thread.start()

    def _read(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            if self.serving_s is None and SERVING in line:
                self.serving_s = time.perf_counter() - self._started


def one_start(env: Mapping[str, str], idle: float, *, embedded: bool = False) -> Start:
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    started = time.perf_counter()
    sandbox = ["--sandbox"] if embedded else []
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", "serve", "--no-console", *sandbox, "--port", str(port)],
        env={**env, "LEASH_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    watch = Watch(process.stdout, started)
    try:
        while not ready(url):
            if process.poll() is not None:
                raise RuntimeError(f"leash serve exited with {process.returncode}")
            if time.perf_counter() - started > READY_WITHIN:
                raise RuntimeError(f"/readyz not 200 within {READY_WITHIN} s")
            time.sleep(POLL_SECONDS)
        ready_s = time.perf_counter() - started
        time.sleep(idle)
        rss, hwm = status_mib(process.pid, "VmRSS"), status_mib(process.pid, "VmHWM")
        return Start(ready_s, watch.serving_s, rss, hwm)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def median_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def medians(starts: Sequence[Start]) -> dict[str, float | None]:
    return {
        "ready_s": round(statistics.median(s.ready_s for s in starts), 3),
        "serving_s": median_or_none([s.serving_s for s in starts]),
        "idle_rss_mib": round(statistics.median(s.idle_rss_mib for s in starts), 1),
        "peak_rss_mib": round(statistics.median(s.peak_rss_mib for s in starts), 1),
    }


def starts_of(env: Mapping[str, str], runs: int, idle: float, *, embedded: bool) -> list[Start]:
    one_start(env, 0.0, embedded=embedded)  # a first install: migrates the new database
    return [one_start(env, idle, embedded=embedded) for _ in range(runs)]


def run(runs: int, idle: float) -> dict[str, Any]:
    sandbox = Sandbox.start()
    try:
        with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
            base = {**os.environ, "LEASH_AUDIT_KEY": secrets.token_hex(32)}
            alone = starts_of(
                {
                    **base,
                    **sandbox.env,
                    "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'alone.db'}",
                    "LEASH_CLOUD": "aws",
                },
                runs,
                idle,
                embedded=False,
            )
            embedded = starts_of(
                {**base, "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'embedded.db'}"},
                runs,
                idle,
                embedded=True,
            )
    finally:
        sandbox.stop()
    return {
        "parameters": {
            "runs": runs,
            "idle_s": idle,
            "command": "python -m bot serve --no-console [--sandbox] --port N",
            "setup": "one SQLite file per set-up, migrated by an unmeasured first start; alone: "
            "LEASH_CLOUD=aws against the sandbox's moto server in the bench process; embedded: "
            f"--sandbox; /readyz polled every {POLL_SECONDS * 1000:.0f} ms",
            "targets": {"alone_ready_s": 1.5, "alone_idle_rss_mib": 150},
        },
        "alone": [asdict(s) for s in alone],
        "embedded": [asdict(s) for s in embedded],
        "median": {"alone": medians(alone), "embedded": medians(embedded)},
        "environment": describe("sqlite+aiosqlite://", ("aiohttp", "sqlalchemy", "boto3")),
    }


def print_report(report: dict[str, Any]) -> None:
    params = report["parameters"]
    print(f"cold start — {params['command']}; {params['setup']}")
    rows = []
    for setup in ("alone", "embedded"):
        rows += [(f"{setup} run {i + 1}", *cells(s)) for i, s in enumerate(report[setup])]
        rows.append((f"{setup} median", *cells(report["median"][setup])))
    header = ("", "spawn->/readyz 200 s", "spawn->discovered s", "idle RSS MiB", "peak RSS MiB")
    print_table(header, rows)
    alone = report["median"]["alone"]
    targets = params["targets"]
    print(
        f"alone, against the targets: /readyz {alone['ready_s']:.2f} s "
        f"(target <= {targets['alone_ready_s']} s), idle RSS {alone['idle_rss_mib']:.1f} MiB "
        f"(target <= {targets['alone_idle_rss_mib']} MiB)"
    )
    print(f"idle RSS: VmRSS {params['idle_s']} s after ready; peak: VmHWM at that moment")


def cells(start: Mapping[str, Any]) -> tuple[str, str, str, str]:
    serving = start["serving_s"]
    return (
        f"{start['ready_s']:.2f}",
        "-" if serving is None else f"{serving:.2f}",
        f"{start['idle_rss_mib']:.1f}",
        f"{start['peak_rss_mib']:.1f}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="process starts (5)")
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds before RSS (5)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    report = run(args.runs, args.idle)
    print_report(report)
    write("cold_start", report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
