"""A pytest plugin: every cloud operation Leash calls in the suite must be in its manifests.

Each process (each xdist worker) watches every emulator it runs (moto, the GCP and Azure
emulators; any sandbox, also those single tests start, and the calls `leash serve` subprocesses
make to them) and keeps what Leash's own calls (user agent `leash/<version>`) needed, with the
first test that needed it. Workers hand theirs to the controller through xdist's
`workeroutput`; the controller (or the single process) checks them against manifests/ at the
end: a permission no responsible manifest grants fails the session; when the whole suite ran
(no -k, -m, -x, --lf, --deselect, no subset of files), it also lists what the manifests grant
that no call needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloud.sandbox.operation_log import CloudOperation, observe
from tests.manifest_coverage import Exercised, Manifests, exercised, missing, never_used

WORKER_OUTPUT_KEY = "leash_cloud_operations"
SUMMARY_TITLE = "Leash's cloud operations against manifests/"
_RECORDER = pytest.StashKey["OperationRecorder"]()
_REPORT = pytest.StashKey["CoverageReport"]()


class OperationRecorder:
    """What Leash's calls needed in this process, each with the first test that needed it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[Exercised, str] = {}
        self._test = "(outside any test)"
        self._stop: Callable[[], None] | None = None

    def start(self) -> None:
        """Start watching every emulator in this process."""
        self._stop = observe(self.seen)

    def stop(self) -> None:
        """Stop watching."""
        if self._stop is not None:
            self._stop()
            self._stop = None

    def seen(self, operation: CloudOperation) -> None:
        """Keep what one served operation needed, if Leash made the call."""
        need = exercised(operation)
        if need is None:
            return
        with self._lock:
            self._first.setdefault(need, self._test)

    def now_running(self, nodeid: str) -> None:
        """Attribute what is seen from now to the test `nodeid`."""
        with self._lock:
            self._test = nodeid

    def first_tests(self) -> dict[Exercised, str]:
        """Return every need seen, with the first test that had it."""
        with self._lock:
            return dict(self._first)

    def rows(self) -> list[list[str]]:
        """Return the needs as plain rows, for xdist to carry to the controller."""
        return [[*_fields(need), test] for need, test in self.first_tests().items()]

    def merge(self, rows: list[list[str]]) -> None:
        """Add a worker's rows, keeping the first test already known for a need."""
        with self._lock:
            for cloud, permission, caller_role, test in rows:
                self._first.setdefault(Exercised(cloud, permission, caller_role), test)


class CoverageReport:
    """The verdict on one run: what the manifests lack, and what they grant unused."""

    def __init__(self, first_tests: dict[Exercised, str], *, whole_suite: bool) -> None:
        manifests = Manifests()
        self.first_tests = first_tests
        self.missing = missing(first_tests, manifests)
        self.never_used = never_used(first_tests, manifests) if whole_suite else None

    def lines(self) -> list[str]:
        """Return the report as terminal lines."""
        found = f"{len(self.first_tests)} distinct permissions needed by Leash's own calls"
        lines = [found]
        if self.missing:
            lines.append(f"MISSING from manifests/ ({len(self.missing)}): the session fails")
            lines += [
                f"  {need.describe()}  first in {self.first_tests[need]}" for need in self.missing
            ]
        else:
            lines.append("missing from manifests/: none")
        if self.never_used is None:
            lines.append("never exercised: not reported (only on a run of the whole suite)")
        elif not self.never_used:
            lines.append("never exercised by the suite: none")
        else:
            lines.append("never exercised by the suite (informational):")
            lines += [
                f"  {manifest}: {', '.join(patterns)}"
                for manifest, patterns in sorted(self.never_used.items())
            ]
        return lines


def _fields(need: Exercised) -> list[str]:
    return [need.cloud, need.permission, need.caller_role]


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_xdist_controller(config: pytest.Config) -> bool:
    # xdist registers its DSession only after this plugin's pytest_configure: ask the options.
    distributing = getattr(config.option, "dist", "no") not in ("no", None)
    return distributing and not _is_worker(config) and not config.option.collectonly


def whole_suite(config: pytest.Config, session: pytest.Session) -> bool:
    """Say whether this run ran everything: no selection, no early stop, only `tests`."""
    option = config.option
    if getattr(option, "keyword", "") or getattr(option, "markexpr", ""):
        return False
    if getattr(option, "maxfail", 0) or getattr(option, "lf", False):
        return False
    if getattr(option, "deselect", None) or session.shouldstop or session.shouldfail:
        return False
    tests_dir = Path(__file__).resolve().parent
    given = [Path(arg.split("::", 1)[0]).resolve() for arg in config.args]
    return all(path in (tests_dir, config.rootpath) for path in given)


class _ControllerHooks:
    """The xdist controller's side: collect each worker's needs as it goes down."""

    def __init__(self, recorder: OperationRecorder) -> None:
        self._recorder = recorder

    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        output = getattr(node, "workeroutput", None) or {}
        self._recorder.merge(output.get(WORKER_OUTPUT_KEY, []))


def pytest_configure(config: pytest.Config) -> None:
    recorder = OperationRecorder()
    config.stash[_RECORDER] = recorder
    if _is_xdist_controller(config):
        config.pluginmanager.register(_ControllerHooks(recorder), "leash-cloud-operations-xdist")
    else:
        recorder.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_RECORDER, None)
    if recorder is not None:
        recorder.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.config.stash[_RECORDER].now_running(item.nodeid)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    config = session.config
    recorder = config.stash[_RECORDER]
    if _is_worker(config):
        config.workeroutput[WORKER_OUTPUT_KEY] = recorder.rows()  # type: ignore[attr-defined]
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return
    report = CoverageReport(recorder.first_tests(), whole_suite=whole_suite(config, session))
    config.stash[_REPORT] = report
    if report.missing and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(_REPORT, None)
    if report is None or not report.first_tests:
        return
    terminalreporter.section(SUMMARY_TITLE, red=bool(report.missing), bold=True)
    for line in report.lines():
        terminalreporter.write_line(line)
