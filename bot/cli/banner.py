"""What `leash serve` says while it starts (a line per phase) and once it serves (the banner).

On a terminal with the console, plain lines; in JSON log mode without the console, the banner
is one JSON log record, so that everything Leash writes to its log is JSON.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from aiohttp import web
from sqlalchemy.engine import make_url

from bot import crash_drill
from bot.store import audit_keys
from bot.surfaces.console.inventory import InventoryCounts, inventory_counts

if TYPE_CHECKING:
    from bot.app import Leash

log = logging.getLogger("leash.serve")


class StartupProgress:
    """`Starting the sandbox clouds… done (2.1 s)`: one line per phase, on the console only."""

    def __init__(self, *, enabled: bool, out: TextIO | None = None) -> None:
        self._enabled = enabled
        self._out = out or sys.stdout
        self._started = 0.0

    def phase(self, text: str) -> None:
        """A phase begins: say what Leash is doing (the line is ended by `done`)."""
        self._started = time.monotonic()
        if self._enabled:
            self._out.write(f"{text}… ")
            self._out.flush()

    def done(self, result: str = "done") -> None:
        if self._enabled:
            self._out.write(f"{result} ({time.monotonic() - self._started:.1f} s)\n")
            self._out.flush()


def clouds_of(leash: Leash) -> str:
    """`3 clouds (aws, gcp, azure)`: where discovery looks."""
    names = list(leash.providers)
    return f"{len(names)} cloud{'' if len(names) == 1 else 's'} ({', '.join(names)})"


@dataclass
class Banner:
    """The banner's lines, and the same facts as fields for a JSON log record."""

    lines: list[str] = field(default_factory=list)
    fields: dict[str, object] = field(default_factory=dict)

    def add(self, line: str, **fields: object) -> None:
        self.lines.append(line)
        self.fields.update(fields)


def plain_text(log_format: str, *, console: bool) -> bool:
    """Whether start-up speaks in plain lines: with text logs, or beside the console (its
    stdout is the chat, and `leash serve` logs only warnings while the console is on)."""
    return log_format != "json" or console


async def announce(leash: Leash, runner: web.AppRunner, *, plain: bool) -> None:
    """Print the banner (`plain`), or log it as one record (JSON logs, no console at hand)."""
    banner = _serving(leash, runner, await inventory_counts(leash.lifecycle))
    _extras(leash, banner)
    if not plain:
        log.info(banner.lines[0], extra={"banner": banner.fields})
        return
    sys.stdout.write("\n".join(banner.lines) + "\n")
    sys.stdout.flush()


def _serving(leash: Leash, runner: web.AppRunner, counts: InventoryCounts) -> Banner:
    banner = Banner()
    addresses = [f"http://{a[0]}:{a[1]}" for a in runner.addresses if len(a) >= 2]
    banner.add(
        f"Leash is serving on {', '.join(addresses)} (agent API at /api/v1, health at /healthz).",
        addresses=addresses,
    )
    # Never the password: this line ends up in terminals and container logs.
    database = make_url(leash.settings.database_url).render_as_string(hide_password=True)
    banner.add(f"Database: {database}", database=database)
    audit_key = audit_keys.sandbox_key_path(leash.settings.database_url)
    if leash.settings.audit_key is None and audit_key is not None:
        banner.add(
            f"Audit key: the sandbox's own, in {audit_key} (mode 0600, made on the first start); "
            "keep it with the "
            "database, `leash audit verify` needs it (LEASH_AUDIT_KEY in production).",
            audit_key_file=str(audit_key),
        )
    banner.add(
        counts.line(),
        identities=counts.identities,
        agents=counts.agents,
        unowned=counts.unowned,
        unowned_agents=list(counts.unowned_agents),
    )
    failures = leash.inventory.failures if leash.inventory is not None else {}
    for scope, why in failures.items():
        banner.add(f"  could not read {scope}: {why}")
    if failures:
        banner.fields["unread"] = dict(failures)
    drill = crash_drill.armed_step()
    if drill is not None:
        banner.add(
            f"Failure drill: {crash_drill.ENVIRONMENT_VARIABLE}={drill}: Leash kills itself "
            "(SIGKILL) when the next grant reaches that step; start it again without the variable.",
            failure_drill=drill,
        )
    return banner


def _extras(leash: Leash, banner: Banner) -> None:
    """Slack, Teams and the sandbox's endpoints."""
    if leash.slack is not None:
        banner.add(
            "Slack: enabled; point the app's request URLs at <this server>/slack/events.",
            slack=True,
        )
    if leash.teams is not None:
        auth = "on" if leash.teams.auth.enabled else "OFF (sandbox only)"
        banner.add(
            f"Teams: enabled at <this server>/api/messages; authentication {auth}.",
            teams=True,
            teams_authentication=auth,
        )
    sandbox = leash.sandbox
    if sandbox is None:
        return
    banner.add(
        f"Sandbox AWS (moto) at {sandbox.endpoint_url} with "
        f"{len(sandbox.accounts)} accounts (AWS_ENDPOINT_URL for the aws CLI / boto3).",
        sandbox_aws=sandbox.endpoint_url,
    )
    if sandbox.gcp is not None:
        gcp = sandbox.gcp
        banner.add(
            f"Sandbox GCP at {gcp.rest_endpoint} (REST) and {gcp.grpc_target} (gRPC) with "
            f"{len(gcp.project_ids)} projects.",
            sandbox_gcp=gcp.rest_endpoint,
        )
    if sandbox.azure is not None:
        azure = sandbox.azure
        banner.add(
            f"Sandbox Azure at {azure.endpoint} (https, self-signed) with "
            f"{len(azure.subscription_ids)} subscriptions.",
            sandbox_azure=azure.endpoint,
        )
    banner.add("Try:  request support-triage-agent s3-read for 2m because checking tickets")
    banner.add(
        "      as owner-a  →  1 (presses the card's first button)  ·  grants all  ·  identities"
    )


async def discovered(leash: Leash) -> str:
    """`24 identities, 19 AI agents`: what discovery left in the inventory."""
    counts = await inventory_counts(leash.lifecycle)
    return f"{counts.identities} identities, {counts.agents} AI agents"
