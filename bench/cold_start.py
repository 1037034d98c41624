"""Cold start of `leash serve --no-console` to /readyz 200, and the idle process's memory.

Leash runs as a child process (`python -m bot serve`, SQLite, LEASH_CLOUD=aws) against a
sandbox moto server started in this process, so the child's memory is Leash's alone.
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


def one_start(env: Mapping[str, str], idle: float) -> Start:
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bot", "serve", "--no-console", "--port", str(port)],
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


def run(runs: int, idle: float) -> dict[str, Any]:
    sandbox = Sandbox.start()
    starts: list[Start] = []
    try:
        with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
            for i in range(runs):
                env = {
                    **os.environ,
                    **sandbox.env,
                    "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / f'leash-{i}.db'}",
                    "LEASH_CLOUD": "aws",
                    # A real cloud needs the audit key; a fresh one per run, like a new install.
                    "LEASH_AUDIT_KEY": secrets.token_hex(32),
                }
                starts.append(one_start(env, idle))
    finally:
        sandbox.stop()
    return {
        "parameters": {
            "runs": runs,
            "idle_s": idle,
            "command": "python -m bot serve --no-console --port N",
            "setup": "fresh SQLite file per run (migrations included), LEASH_CLOUD=aws against "
            "the sandbox's moto server in the bench process (its env), /readyz polled every "
            f"{POLL_SECONDS * 1000:.0f} ms",
        },
        "starts": [asdict(s) for s in starts],
        "median": {
            "ready_s": round(statistics.median(s.ready_s for s in starts), 3),
            "serving_s": median_or_none([s.serving_s for s in starts]),
            "idle_rss_mib": round(statistics.median(s.idle_rss_mib for s in starts), 1),
            "peak_rss_mib": round(statistics.median(s.peak_rss_mib for s in starts), 1),
        },
        "environment": describe("sqlite+aiosqlite://", ("aiohttp", "sqlalchemy", "boto3")),
    }


def print_report(report: dict[str, Any]) -> None:
    params = report["parameters"]
    print(f"cold start — {params['command']}; {params['setup']}")
    rows = [(f"run {i + 1}", *cells(s)) for i, s in enumerate(report["starts"])]
    rows.append(("median", *cells(report["median"])))
    header = ("", "spawn->/readyz 200 s", "spawn->discovered s", "idle RSS MiB", "peak RSS MiB")
    print_table(header, rows)
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
