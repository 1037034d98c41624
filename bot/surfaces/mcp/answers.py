"""What each tool answers: a few sentences for the model, and the agent API's JSON beside them.

The sentences say what happened and what to do next (wait, retry, release); the JSON
(`structuredContent`) is the agent API's own shape, for code that reads it. Nothing here
imports the `mcp` SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.domain.durations import format_duration

Json = dict[str, Any]

# How long a new grant takes to be honoured by each cloud after Leash wrote it.
PROPAGATION: dict[str, tuple[timedelta, str]] = {
    "aws": (timedelta(seconds=10), "AWS IAM changes take effect within ~10 s"),
    "gcp": (
        timedelta(minutes=2),
        "Google Cloud IAM changes usually take effect within 2 minutes (rarely up to 7)",
    ),
    "azure": (
        timedelta(minutes=10),
        "Azure role assignments can take up to 10 minutes to take effect",
    ),
}
UNKNOWN_CLOUD = (timedelta(minutes=2), "cloud permission changes take a moment to take effect")


@dataclass(frozen=True, slots=True)
class Answer:
    """A tool's result: `text` for the model, `data` as structured content."""

    text: str
    data: Json


def _at(text: str) -> str:
    """An ISO time as 'HH:MM:SS UTC' (the model compares it with its clock)."""
    return datetime.fromisoformat(text).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def asked(request: Json) -> Answer:
    approvers = ", ".join(request["approvers"]) or "an admin"
    what = "Extension request" if request.get("extends_grant_id") else "Request"
    text = (
        f"{what} {request['id']} is waiting for approval by {approvers} (tier {request['tier']}, "
        f"{request['approvals_required']} approval(s) needed; they decide by "
        f"{_at(request['decide_by'])}). Call wait_for_decision with request_id "
        f"'{request['id']}'. Nothing is granted until they approve."
    )
    return Answer(text, request)


def decided(request: Json, *, cloud: str | None, now: datetime) -> Answer:
    """The answer of wait_for_decision: approved (and when it works), denied, or pending."""
    state = request["state"]
    grant = request.get("grant")
    if state == "pending":
        return Answer(
            f"Request {request['id']} is still waiting for approval by "
            f"{', '.join(request['approvers']) or 'an admin'} (decide by "
            f"{_at(request['decide_by'])}). Nothing is held: call wait_for_decision again.",
            request,
        )
    if state == "approved" and grant and grant["state"] == "active":
        return _approved(request, grant, cloud=cloud, now=now)
    if state == "approved" and grant and grant["state"] == "applying":
        return Answer(
            f"Request {request['id']} was approved by {request['decided_by']}; Leash is writing "
            f"grant {grant['id']} to the cloud now. Call wait_for_decision again in a few seconds.",
            request,
        )
    if state == "approved":
        shown = grant["state"] if grant else "not applied"
        return Answer(
            f"Request {request['id']} was approved by {request['decided_by']}, but its grant is "
            f"{shown}: Leash could not write it to the cloud. Your owner has been told; do not "
            "retry the same request.",
            request,
        )
    note = f": {request['decision_note']}" if request.get("decision_note") else ""
    by = f" by {request['decided_by']}" if request.get("decided_by") else ""
    advice = {
        "denied": "Do not ask again for the same thing; change the task or ask your owner.",
        "expired": "No one decided in time. Ask again only if you still need it.",
    }.get(state, "Ask again only if you still need it.")
    return Answer(f"Request {request['id']} was {state}{by}{note}. {advice}", request)


def _approved(request: Json, grant: Json, *, cloud: str | None, now: datetime) -> Answer:
    delay, words = PROPAGATION.get(cloud or "", UNKNOWN_CLOUD)
    effective = (now + delay).astimezone(UTC)
    data = {
        **request,
        "effective_by": effective.isoformat(),
        "retry_access_denied_for_seconds": int(delay.total_seconds()),
    }
    extended = request.get("extends_grant_id")
    what = f"Grant {grant['id']} now lasts" if extended else f"Grant {grant['id']} is active"
    text = (
        f"Approved by {request['decided_by']}. {what} until {_at(grant['expires_at'])}. "
        f"{words}: if a call fails with AccessDenied before "
        f"{effective.strftime('%H:%M:%S')} UTC, wait a few seconds and retry it. Call "
        f"release_access with grant_id '{grant['id']}' as soon as you are done."
    )
    return Answer(text, data)


def access(me: Json) -> Answer:
    """list_my_access: live grants, pending requests, the permission sets to ask for."""
    identity = me["identity"]
    lines = [f"You are {identity['name']} ({identity['cloud']}, {identity['native_id']})."]
    if me["grants"]:
        lines.append("Live grants:")
        lines.extend(
            f"- {g['id']}: {', '.join(g['actions'])} on {', '.join(g['resources']) or '*'}, "
            f"{g['state']} until {_at(g['expires_at'])}"
            for g in me["grants"]
        )
    else:
        lines.append("No live grants.")
    lines.extend(
        f"Pending request {r['id']}: {', '.join(r['actions'])} for "
        f"{format_duration(timedelta(seconds=r['duration_seconds']))}"
        for r in me["pending"]
    )
    if me["permission_sets"]:
        lines.append(
            "Permission sets you may ask for: "
            + "; ".join(
                f"{s['name']} ({s['description']})" if s["description"] else s["name"]
                for s in me["permission_sets"]
            )
        )
    return Answer("\n".join(lines), me)


def released(grant: Json) -> Answer:
    return Answer(
        f"Grant {grant['id']} is {grant['state']}: the permissions are removed now.", grant
    )


def identity_text(me: Json) -> str:
    """The identity resource: who this agent is, and who answers for it."""
    identity = me["identity"]
    return (
        f"{identity['name']} ({identity['cloud']} account {identity['account']}, "
        f"{identity['native_id']}); owner {identity['owner'] or 'none'}, backup "
        f"{identity['backup_owner'] or 'none'}, team {identity['team'] or 'none'}."
    )
