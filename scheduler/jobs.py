"""Thin jobs that take ids and call the lifecycle; all state lives in the database."""

from __future__ import annotations

import logging

from bot.lifecycle.service import Lifecycle
from bot.store import audit

log = logging.getLogger("leash.jobs")


async def expire_grant(lifecycle: Lifecycle, grant_id: str) -> None:
    """The timer at a grant's expiry (re-armed instead if another replica extended it)."""
    grant = await lifecycle.grants.expire(grant_id)
    log.info("timer for %s: grant is %s", grant_id, grant.state)


async def revoke_overdue(lifecycle: Lifecycle) -> None:
    """On becoming leader: revoke what fell due while no process led (the sweep's first pass)."""
    revoked = await lifecycle.sweep.revoke_due()
    if revoked:
        log.info("revoked %d grant(s) that fell due while no process led the scheduler", revoked)


async def sweep(lifecycle: Lifecycle) -> None:
    """The database-driven backstop: revoke what is due, expire and nudge requests."""
    report = await lifecycle.sweep.run()
    expired = await lifecycle.deadlines.expire_due()
    nudged = await lifecycle.deadlines.nudge_due()
    if report.revoked or report.resumed or expired or nudged:
        log.info(
            "sweep: %d revoked, %d resumed, %d warned, %d requests expired, %d nudged",
            report.revoked,
            report.resumed,
            report.warned,
            expired,
            nudged,
        )


async def reconcile(lifecycle: Lifecycle) -> None:
    """Remove grant artefacts in the cloud that no live grant accounts for."""
    removed = await lifecycle.sweep.reconcile()
    if removed:
        log.warning("reconcile removed %d orphaned grant artefact(s)", removed)


async def nightly(lifecycle: Lifecycle) -> None:
    """Discovery, unowned alerts, attestation, then the usage scan and the owners' messages."""
    report = await lifecycle.inventory.refresh()
    alerted = await lifecycle.stewardship.alert_unowned()
    asked = await lifecycle.stewardship.ask_attestation()
    log.info(
        "nightly: %d identities (%d problems), %d unowned alerts, %d attestation requests",
        report.found,
        len(report.failures),
        alerted,
        asked,
    )
    scan = await lifecycle.least_privilege.nightly()
    log.info(
        "nightly scan: %d scanned (%d unknown, %d failed), %d unused, %d inactive; guardrails "
        "%d written, %d reported, %d failed; %d owner message(s), %d auto-quarantined",
        scan.scan.scanned,
        scan.scan.unknown,
        len(scan.scan.failures),
        scan.scan.unused_total,
        scan.scan.inactive,
        len(scan.guardrails.written),
        len(scan.guardrails.reported),
        len(scan.guardrails.failures),
        scan.owners_told,
        scan.auto_quarantined,
    )


async def weekly_digest(lifecycle: Lifecycle) -> None:
    """Post every team's digest to its channel."""
    sent = await lifecycle.least_privilege.send_all_digests()
    log.info("weekly digest posted for %d team(s)", sent)


async def publish_audit_head(lifecycle: Lifecycle) -> None:
    """Log the audit chain's head, so a copy outside the database shows truncation later."""
    newest = await lifecycle.queries.audit_head()
    audit.publish_head(newest, via="scheduler")
