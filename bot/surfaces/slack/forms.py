"""Slack modals (request, deny, extend) and the App Home tab."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.commands.forms import duration_choices
from bot.domain.durations import format_duration
from bot.domain.messages import Choice, ChoiceStyle
from bot.domain.rules import Rules
from bot.domain.states import shown_state
from bot.store.tables import AccessRequest, Grant, Identity, Ownership
from bot.surfaces.slack.render import Block, actions, bold, context, rich, styled

REQUEST_CALLBACK = "leash_request"
DENY_CALLBACK = "leash_deny"
EXTEND_CALLBACK = "leash_extend"
ASSIGN_CALLBACK = "leash_assign"
IDENTITY_ACTION = "identity_select"
# Which modal block shows the error of each domain field.
FIELD_BLOCKS = {
    "identity": "identity",
    "permissions": "permission_set",
    "permission_set": "permission_set",
    "actions": "actions",
    "resources": "resources",
    "duration": "duration",
    "reason": "reason",
}


def _text(value: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": value[:150]}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label[:75]), "value": value[:150]}


def _duration_input(rules: Rules, label: str) -> Block:
    choices = duration_choices(rules)
    initial = next((d for d in choices if d >= timedelta(hours=1)), choices[-1])
    options = [_option(format_duration(d), format_duration(d)) for d in choices]
    return {
        "type": "input",
        "block_id": "duration",
        "label": _text(label),
        "hint": _text("Longer durations need a lower tier; the policy caps each tier."),
        "element": {
            "type": "static_select",
            "action_id": "duration",
            "options": options,
            "initial_option": _option(format_duration(initial), format_duration(initial)),
        },
    }


def _reason_input(label: str = "Reason") -> Block:
    return {
        "type": "input",
        "block_id": "reason",
        "label": _text(label),
        "element": {
            "type": "plain_text_input",
            "action_id": "reason",
            "multiline": True,
            "max_length": 1000,
        },
    }


def request_modal(rules: Rules) -> dict[str, Any]:
    """The form `/leash request` opens."""
    sets = [
        _option(f"{name} — {ps.description}" if ps.description else name, name)
        for name, ps in sorted(rules.permission_sets.items())
    ][:100]
    permission_block: Block = {
        "type": "input",
        "block_id": "permission_set",
        "optional": True,
        "label": _text("Permission set"),
        "element": {"type": "static_select", "action_id": "permission_set", "options": sets}
        if sets
        else {"type": "plain_text_input", "action_id": "permission_set"},
    }
    return {
        "type": "modal",
        "callback_id": REQUEST_CALLBACK,
        "title": _text("Request access"),
        "submit": _text("Request"),
        "close": _text("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "identity",
                "label": _text("Agent identity"),
                "element": {
                    "type": "external_select",
                    "action_id": IDENTITY_ACTION,
                    "min_query_length": 0,
                    "placeholder": _text("Search by name, account or ARN"),
                },
            },
            permission_block,
            {
                "type": "input",
                "block_id": "actions",
                "optional": True,
                "label": _text("…or custom actions"),
                "hint": _text(
                    "e.g. s3:GetObject, s3:ListBucket (leave empty with a permission set)"
                ),
                "element": {"type": "plain_text_input", "action_id": "actions"},
            },
            {
                "type": "input",
                "block_id": "resources",
                "optional": True,
                "label": _text("Resources (ARNs)"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "resources",
                    "multiline": True,
                },
            },
            _duration_input(rules, "For how long"),
            _reason_input(),
        ],
    }


def deny_modal(request_id: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": DENY_CALLBACK,
        "private_metadata": request_id,
        "title": _text("Deny request"),
        "submit": _text("Deny"),
        "close": _text("Cancel"),
        "blocks": [
            rich("Deny request ", bold(request_id), "? The requester will read your reason."),
            _reason_input("Why"),
        ],
    }


def extend_modal(grant_id: str, rules: Rules) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": EXTEND_CALLBACK,
        "private_metadata": grant_id,
        "title": _text("Extend grant"),
        "submit": _text("Ask"),
        "close": _text("Cancel"),
        "blocks": [
            rich("Ask for more time on grant ", bold(grant_id), "; it is approved like a request."),
            _duration_input(rules, "How much longer"),
            _reason_input(),
        ],
    }


def assign_modal(identity: str) -> dict[str, Any]:
    """Pick the owner (and optionally a backup and team) of an identity."""

    def user_select(block_id: str, label: str, *, optional: bool) -> Block:
        return {
            "type": "input",
            "block_id": block_id,
            "optional": optional,
            "label": _text(label),
            "element": {"type": "users_select", "action_id": block_id},
        }

    return {
        "type": "modal",
        "callback_id": ASSIGN_CALLBACK,
        "private_metadata": identity[:3000],
        "title": _text("Assign an owner"),
        "submit": _text("Assign"),
        "close": _text("Cancel"),
        "blocks": [
            rich("Who owns ", bold(identity), "?"),
            user_select("owner", "Owner", optional=False),
            user_select("backup", "Backup owner", optional=True),
            {
                "type": "input",
                "block_id": "team",
                "optional": True,
                "label": _text("Team"),
                "element": {"type": "plain_text_input", "action_id": "team", "max_length": 128},
            },
        ],
    }


def home_view(
    *,
    pending: list[tuple[AccessRequest, Identity]],
    grants: list[tuple[Grant, Identity]],
    owned: list[tuple[Identity, Ownership]],
    now: datetime,
) -> dict[str, Any]:
    """The App Home tab: my pending approvals, my live grants, agents I own."""
    blocks = [*_pending_blocks(pending), *_grant_blocks(grants, now=now), *_owned_blocks(owned)]
    return {"type": "home", "blocks": blocks[:100]}


def _pending_blocks(pending: list[tuple[AccessRequest, Identity]]) -> list[Block]:
    blocks: list[Block] = [{"type": "header", "text": _text("Waiting for your decision")}]
    if not pending:
        blocks.append(context("Nothing is waiting for you."))
    for request, identity in pending[:15]:
        what = request.permission_set or ", ".join(request.actions)
        duration = format_duration(timedelta(seconds=request.duration_seconds))
        blocks.append(
            rich(
                bold(request.id),
                f" · {request.requester} asks for ",
                styled(what[:200], "code"),
                " on ",
                bold(identity.name),
                f" for {duration}\n",
                styled(request.reason[:300], "italic"),
            )
        )
        blocks.append(
            actions(
                (
                    Choice("Approve", f"approve {request.id}", ChoiceStyle.PRIMARY),
                    Choice("Deny", f"deny {request.id}", ChoiceStyle.DANGER),
                ),
                block_id=f"home-request-{request.id}",
            )
        )
    return blocks


def _grant_blocks(grants: list[tuple[Grant, Identity]], *, now: datetime) -> list[Block]:
    blocks: list[Block] = [{"type": "header", "text": _text("Your live grants")}]
    if not grants:
        blocks.append(context("You have no live grants."))
    for grant, identity in grants[:15]:
        blocks.append(
            rich(
                bold(grant.id),
                " on ",
                bold(identity.name),
                f" · {shown_state(grant, now=now)} until {grant.expires_at:%Y-%m-%d %H:%M} UTC\n",
                styled(", ".join(grant.actions)[:300], "code"),
            )
        )
        blocks.append(
            actions(
                (
                    Choice("Revoke now", f"revoke {grant.id}", ChoiceStyle.DANGER),
                    Choice("Extend", f"extend {grant.id}"),
                ),
                block_id=f"home-grant-{grant.id}",
            )
        )
    return blocks


def _owned_blocks(owned: list[tuple[Identity, Ownership]]) -> list[Block]:
    blocks: list[Block] = [{"type": "header", "text": _text("Agents you own")}]
    if not owned:
        blocks.append(context("You own no agent identities."))
    for identity, ownership in owned[:30]:
        blocks.append(
            rich(
                bold(identity.name),
                f" · {identity.classification} · team {ownership.team or '-'}\n",
                identity.native_id,
            )
        )
    return blocks
