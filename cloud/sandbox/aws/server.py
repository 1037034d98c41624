"""Run moto's server in this process on a free loopback port, recording the calls it serves."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from cloud.sandbox.aws.iam_limits import InlineBudgetMiddleware
from cloud.sandbox.aws.moto_calls import MotoCall, MotoCallLog, RecordingMiddleware
from cloud.sandbox.aws.moto_faults import FaultMiddleware, FaultRule, FaultRules, parse_operation

if TYPE_CHECKING:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

LOOPBACK = "127.0.0.1"


def _quiet_server(host: str, log: MotoCallLog, faults: FaultRules) -> ThreadedMotoServer:
    """Return a ThreadedMotoServer that records each call in `log` but prints none.

    Calls are recorded before `faults` may answer them, so an injected error is a call too.
    """
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietRequestHandler(MotoRequestHandler):
        # The console chat surface shares the terminal: one log line per AWS call would bury it.
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            return

    class QuietMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            moto = DomainDispatcherApplication(create_backend_app)
            app = RecordingMiddleware(FaultMiddleware(InlineBudgetMiddleware(moto), faults), log)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=QuietRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return QuietMotoServer(ip_address=host, port=0, verbose=False)


@dataclass(slots=True)
class MotoServer:
    """A moto server thread; every in-process server shares moto's one set of backends."""

    host: str
    port: int
    _server: ThreadedMotoServer = field(repr=False)
    _log: MotoCallLog = field(repr=False)
    _faults: FaultRules = field(default_factory=FaultRules, repr=False)

    @classmethod
    def start(cls, *, host: str = LOOPBACK) -> MotoServer:
        """Start moto on `host` and a free port, and wait until it listens."""
        log, faults = MotoCallLog(), FaultRules()
        server = _quiet_server(host, log, faults)
        server.start()
        bound_host, port = server.get_host_and_port()
        return cls(host=bound_host, port=port, _server=server, _log=log, _faults=faults)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def calls(self) -> list[MotoCall]:
        """Return every signed AWS call served since start, `reset` or `clear_calls`, in order."""
        return self._log.calls()

    def clear_calls(self) -> None:
        """Forget the recorded calls (resources stay)."""
        self._log.clear()

    def inject(
        self,
        operation: str,
        *,
        code: str = "Throttling",
        status: int = 400,
        times: int | None = 1,
        delay: float = 0,
        match: Mapping[str, str] | None = None,
        late_call: bool = False,
    ) -> FaultRule:
        """Answer the next `times` matching calls (None: all, until `clear_faults`) with an error.

        `operation` is "PutRolePolicy", "iam:PutRolePolicy" or "iam:*". `match` narrows it to
        calls whose parameters (or `account`, `access_key_id`: who signed it) have these values.
        `delay` seconds pass before the answer; with `code=""` moto serves the call and only
        its answer is late; with `late_call=True` too, the call itself waits `delay` seconds
        before moto serves it (a slow write that lands late). Returns the rule (its `used`
        counts the calls it answered).
        """
        service, name = parse_operation(operation)
        rule = FaultRule(
            service=service,
            operation=name,
            code=code,
            status=status,
            remaining=times,
            delay=delay,
            match=MappingProxyType(dict(match or {})),
            late_call=late_call,
        )
        self._faults.add(rule)
        return rule

    def clear_faults(self) -> None:
        """Stop injecting faults."""
        self._faults.clear()

    def reset(self) -> None:
        """Forget every AWS resource moto holds (`POST /moto-api/reset`) and the calls."""
        self._post("/moto-api/reset")
        self._log.clear()

    def seed_random(self, seed: int) -> None:
        """Seed moto's random generator (`POST /moto-api/seed`): the ids it draws repeat."""
        self._post(f"/moto-api/seed?a={seed}")

    def _post(self, path: str) -> None:
        request = urllib.request.Request(  # noqa: S310 - always our own http loopback URL
            f"{self.endpoint_url}{path}", method="POST", data=b""
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def stop(self) -> None:
        """Shut the server down and join its thread."""
        self._server.stop()
