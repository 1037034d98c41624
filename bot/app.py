"""Composition root: builds every service from Settings. Nothing happens at import time."""

from __future__ import annotations

import asyncio
import gc
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from bot import crash_drill
from bot.commands.handler import CommandHandler
from bot.config import CloudMode, Settings, check_teams, load_rules, policy_path
from bot.core.context import Context
from bot.domain import catalog
from bot.domain.messages import Notice
from bot.domain.ports import Clock, FanoutNotifier, Notifier, SystemClock
from bot.domain.rules import Rules
from bot.http.instruments import Instruments
from bot.inventory.refresh import InventoryReport
from bot.lifecycle.service import Lifecycle
from bot.posture.charts import TrendCharts
from bot.store import action_table, audit, audit_keys
from bot.store.engine import DatabaseTimeouts, create_engine, migrate, session_factory
from cloud.base import CloudProvider
from scheduler.leadership import Leadership
from scheduler.runner import CATCH_UP_SECONDS, Runner

if TYPE_CHECKING:  # imported where used: a process without them starts seconds sooner
    from bot.surfaces.slack import SlackSurface
    from bot.surfaces.teams import TeamsSurface
    from cloud.sandbox import Sandbox

log = logging.getLogger("leash.app")

# The sandbox's CloudTrail has no 2-per-second LookupEvents limit; the real one does.
SANDBOX_LOOKUP_RATE = 200.0


class LogNotifier:
    """Writes every notice to the log, so nothing Leash says is lost without a chat surface."""

    async def notify(self, notice: Notice) -> None:
        ids = {"request_id": notice.request_id, "grant_id": notice.grant_id}
        log.info(
            "%s notice for %s: %s",
            notice.kind.value,
            ", ".join(notice.recipients) or "nobody",
            notice.reply.text,
            extra={
                "notice": notice.kind.value,
                "recipients": list(notice.recipients),
                **{name: value for name, value in ids.items() if value is not None},
            },
        )


@dataclass
class Leash:
    """The running application: database, lifecycle, scheduler, cloud, notifiers."""

    settings: Settings
    rules: Rules
    engine: AsyncEngine
    # What the lifecycle was built with: the composition root (and tests) may reach it;
    # surfaces, commands and the API go through the lifecycle's methods.
    context: Context
    lifecycle: Lifecycle
    handler: CommandHandler
    runner: Runner
    leadership: Leadership
    notifier: FanoutNotifier
    sandbox: Sandbox | None = None
    providers: dict[str, CloudProvider] = field(default_factory=dict)
    owns_sandbox: bool = False
    inventory: InventoryReport | None = None
    slack: SlackSurface | None = None
    teams: TeamsSurface | None = None

    async def start(self, *, scheduler: bool = True, discover: bool = True) -> None:
        """Migrate, run the scheduler if this process leads (revocations first), discover."""
        # Parsed on the event loop by the first request, AWS's action data stalled every
        # transaction in flight (for seconds on a loaded machine): load it in a thread meanwhile.
        warming = asyncio.create_task(asyncio.to_thread(_warm_catalog))
        try:
            await migrate(self.engine)
            await self.lifecycle.seal_audit()
            if scheduler:
                await self.leadership.start(
                    self._elected, self.runner.stop, on_timer=self.runner.schedule_revoke
                )
        finally:
            await warming
        if discover:
            await self.discover()

    async def discover(self) -> InventoryReport:
        """Refresh the inventory from every cloud and keep the summary for status output."""
        report = self.inventory = await self.lifecycle.inventory.refresh()
        await self.lifecycle.stewardship.alert_unowned()
        log.info("inventory: %d identities", report.found)
        for scope, why in report.failures.items():
            log.warning("inventory: %s could not be read: %s", scope, why)
        return report

    async def _elected(self) -> None:
        """Now the leader: revoke what fell due (bounded), rebuild the timers, then sweep."""
        await self.runner.start(self.lifecycle)

    async def close(self) -> None:
        await self.leadership.stop()
        await self.runner.stop()
        if self.slack is not None:
            await self.slack.drain()
        if self.teams is not None:
            await self.teams.drain()
        await self.engine.dispose()
        if self.sandbox is not None and self.owns_sandbox:
            self.sandbox.stop()


def settle_heap() -> None:
    """Once a serving process has started: collect, then freeze what is left out of the
    collector's generations. What start-up built (modules, the catalogue, the ORM's tables)
    lives as long as the process; frozen, a full collection no longer walks it and stalls the
    event loop (Slack acknowledgements waited 300-600 ms behind one). Only for the process's
    own entry point: a library caller (a test) would freeze its earlier garbage for good.
    """
    gc.collect()
    gc.freeze()


def _warm_catalog() -> None:
    """AWS's action data from Leash's cached copy (or parsed, then cached), then the catalogue."""
    action_table.load()
    catalog.warm()


def _aws_provider(settings: Settings, sandbox: Sandbox | None) -> CloudProvider:
    from cloud.aws import AwsProvider

    if sandbox is not None:
        return AwsProvider(
            session_factory=sandbox.session,
            endpoint_url=sandbox.endpoint_url,
            region=sandbox.region,
            lookup_rate=SANDBOX_LOOKUP_RATE,
        )
    return AwsProvider(
        region=settings.aws_region,
        accounts=tuple(settings.aws_accounts),
        read_role_name=settings.aws_read_role,
        grant_role_name=settings.aws_grant_role,
        use_organizations=settings.aws_use_organizations,
        lookup_rate=settings.aws_lookup_rate,
    )


def _gcp_provider(settings: Settings, sandbox: Sandbox | None) -> CloudProvider | None:
    """The GCP provider: against the sandbox's emulator, or the configured scope; else none."""
    # Imported only for a cloud in use: Google's libraries take about a second to import.
    if sandbox is not None:
        if sandbox.gcp is None:
            return None
        from cloud.gcp import GcpProvider

        return GcpProvider(
            organization=sandbox.gcp.organization,
            rest_endpoint=sandbox.gcp.rest_endpoint,
            grpc_target=sandbox.gcp.grpc_target,
        )
    if not settings.gcp_enabled:
        return None
    from cloud.gcp import GcpProvider

    return GcpProvider(
        projects=tuple(settings.gcp_projects),
        organization=settings.gcp_organization,
        folders=tuple(settings.gcp_folders),
    )


def _azure_provider(settings: Settings, sandbox: Sandbox | None) -> CloudProvider | None:
    """The Azure provider: against the sandbox's emulator, or the configured subscriptions."""
    if sandbox is not None:
        if sandbox.azure is None:
            return None
        from cloud.azure import AzureProvider

        return AzureProvider(
            credential=sandbox.azure.credential(),
            base_url=sandbox.azure.endpoint,
            graph_url=sandbox.azure.endpoint,
            connection_verify=sandbox.azure.cert_path,
        )
    if not settings.azure_enabled:
        return None
    from cloud.azure import AzureProvider

    return AzureProvider(subscriptions=tuple(settings.azure_subscriptions), pim=settings.azure_pim)


def _slack_surface(
    settings: Settings, lifecycle: Lifecycle, handler: CommandHandler
) -> SlackSurface | None:
    if not (settings.slack_bot_token and settings.slack_signing_secret):
        return None
    from bot.surfaces.slack import SlackSurface

    return SlackSurface(
        lifecycle=lifecycle,
        handler=handler,
        token=settings.slack_bot_token.get_secret_value(),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        api_url=settings.slack_api_url,
        pace_seconds=settings.slack_pace_seconds,
    )


def _teams_surface(
    settings: Settings, lifecycle: Lifecycle, handler: CommandHandler
) -> TeamsSurface | None:
    if not settings.teams_enabled:
        return None
    from bot.surfaces.teams import TeamsAuth, TeamsSurface, Tenants

    password = settings.microsoft_app_password
    auth = TeamsAuth(
        app_id=settings.microsoft_app_id or "",
        app_password=password.get_secret_value() if password else "",
        tenant_id=settings.microsoft_app_tenant_id or "",
        openid_metadata_url=settings.teams_openid_metadata_url,
        token_issuer=settings.teams_token_issuer,
        tenants=Tenants.of(
            app_type=settings.microsoft_app_type,
            app_tenant=settings.microsoft_app_tenant_id,
            listed=settings.teams_tenants,
        ),
    )
    return TeamsSurface(
        lifecycle=lifecycle,
        handler=handler,
        auth=auth,
        retry_seconds=settings.teams_retry_seconds,
        # With Slack on too, someone Teams cannot reach is most likely a Slack user.
        report_unreachable=not settings.slack_enabled,
    )


def build(
    settings: Settings,
    *,
    sandbox: bool | Sandbox | None = None,
    clock: Clock | None = None,
    notifiers: list[Notifier] | None = None,
    rules: Rules | None = None,
) -> Leash:
    """Build Leash from settings; `sandbox` overrides LEASH_CLOUD (or hands in a running one)."""
    rules = rules or load_rules(policy_path(settings))
    running_sandbox, owns_sandbox = _sandbox(settings, sandbox)
    check_teams(settings, real_cloud=running_sandbox is None)
    audit_key = audit_keys.for_leash(settings, real_cloud=running_sandbox is None)
    providers = _providers(settings, running_sandbox)
    engine = _engine(settings)
    leadership, runner = _scheduling(settings)
    notifier = FanoutNotifier([LogNotifier(), *(notifiers or [])])
    sessions = session_factory(engine)
    audit.hand_key_to(sessions, audit_key)
    ctx = Context(
        sessions=sessions,
        providers=providers,
        notifier=notifier,
        clock=clock or SystemClock(),
        rules=rules,
        timers=runner,
        charts=TrendCharts(),
        crashes=crash_drill.from_environment(),
        observer=Instruments(),  # this replica's counters, shown by /metrics
    )
    lifecycle = Lifecycle(ctx)
    handler = CommandHandler(lifecycle)
    slack = _slack_surface(settings, lifecycle, handler)
    if slack is not None:
        notifier.add(slack)
    teams = _teams_surface(settings, lifecycle, handler)
    if teams is not None:
        notifier.add(teams)
    return Leash(
        settings=settings,
        rules=rules,
        engine=engine,
        context=ctx,
        lifecycle=lifecycle,
        handler=handler,
        slack=slack,
        teams=teams,
        runner=runner,
        leadership=leadership,
        notifier=notifier,
        sandbox=running_sandbox,
        providers=providers,
        owns_sandbox=owns_sandbox,
    )


def _engine(settings: Settings) -> AsyncEngine:
    return create_engine(
        settings.database_url,
        DatabaseTimeouts(
            lock_seconds=settings.database_lock_timeout_seconds,
            statement_seconds=settings.database_statement_timeout_seconds,
            idle_in_transaction_seconds=settings.database_idle_in_transaction_seconds,
        ),
    )


def _sandbox(settings: Settings, sandbox: bool | Sandbox | None) -> tuple[Sandbox | None, bool]:
    """The sandbox to run against (None for the real clouds), and whether Leash started it."""
    if sandbox is not None and not isinstance(sandbox, bool):
        return sandbox, False
    if sandbox or (sandbox is None and settings.cloud is CloudMode.SANDBOX):
        from bot.sandbox_extra import sandbox_class  # the optional extra: a hint if it is missing

        return sandbox_class().start(gcp=True, azure=True), True
    return None, False


def _providers(settings: Settings, sandbox: Sandbox | None) -> dict[str, CloudProvider]:
    """AWS always; GCP and Azure when configured (or in the sandbox)."""
    providers = {"aws": _aws_provider(settings, sandbox)}
    gcp = _gcp_provider(settings, sandbox)
    if gcp is not None:
        providers["gcp"] = gcp
    azure = _azure_provider(settings, sandbox)
    if azure is not None:
        providers["azure"] = azure
    return providers


def _scheduling(settings: Settings) -> tuple[Leadership, Runner]:
    """The leader election and the scheduler it runs on the leader."""
    leadership = Leadership(
        settings.database_url,
        retry_seconds=settings.leader_retry_seconds,
        check_seconds=settings.leader_check_seconds,
        lease_seconds=settings.leader_lease_seconds,
    )
    runner = Runner(
        sweep_seconds=settings.sweep_seconds,
        # The lease is first renewed once the election (and this wait) is over.
        catch_up_seconds=min(CATCH_UP_SECONDS, settings.leader_lease_seconds / 3),
        forward=leadership.forward,
        gate=leadership.may_act,
        lost=leadership.lost,
    )
    return leadership, runner
