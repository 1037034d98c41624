"""What Leash writes into AWS does what the card says: the documents are read back from the
moto server and decided by an evaluator written apart from Leash (tests/iam_evaluation.py).

Review findings of issue 17: an exemption opens the action only on the grant's resources
(3), and an agent cannot rewrite the tags Leash reads about it, in any letter case (2).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import Reply
from bot.domain.states import ActorKind
from cloud.sandbox import Sandbox
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, account_iam, grant
from tests.iam_evaluation import Decision, Request, decisions, role_documents

ADMIN = Actor("secops", ActorKind.USER, "console")
DEV = Actor("dev", ActorKind.USER, "console")
OWNER_B = Actor("owner-b", ActorKind.USER, "console")  # owns code-review-agent
AGENT = "code-review-agent"
DENIED = Decision.EXPLICIT_DENY


async def say(leash: Leash, text: str, actor: Actor) -> Reply:
    return await leash.handler.handle_text(text, actor=actor)


def _iam(sandbox: Sandbox) -> Any:
    return account_iam(sandbox, sandbox.identity(AGENT).account.name)


def _arn(iam: Any, role: str) -> str:
    return str(iam.get_role(RoleName=AGENT)["Role"]["Arn"]).replace(f"role/{AGENT}", f"role/{role}")


async def _guarded(leash: Leash) -> None:
    applied = await say(leash, f"guardrail apply {AGENT}", ADMIN)
    assert applied.ok, applied.text


async def test_an_exemption_opens_the_action_only_on_the_grants_resources(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    await _guarded(leash)
    iam = _iam(fresh_sandbox)
    runner, admin_role = _arn(iam, "svc-runner"), _arn(iam, "OrganizationAccountAccessRole")
    asked = await say(
        leash, f"request {AGENT} iam:PassRole on {runner} for 10m because deploy the model", DEV
    )
    request_id = REQUEST_ID.search(asked.text)
    assert request_id, asked.text
    approved = await say(leash, f"approve {request_id.group(1)} ok", ADMIN)
    found = GRANT_ID.search(approved.text)
    assert found, approved.text
    active = await grant(leash, found.group(1))
    now = datetime.now(UTC)
    after = active.expires_at + timedelta(seconds=1)

    documents = role_documents(iam, AGENT)
    assert decisions(
        documents,
        {
            "runner now": Request("iam:PassRole", runner, now),
            "admin role now": Request("iam:PassRole", admin_role, now),
            "runner after expiry": Request("iam:PassRole", runner, after),
            "still guarded": Request("iam:CreateAccessKey", runner, now),
        },
    ) == {
        "runner now": Decision.ALLOW,
        "admin role now": DENIED,
        "runner after expiry": DENIED,
        "still guarded": DENIED,
    }

    revoked = await say(leash, f"revoke {active.id}", DEV)
    assert revoked.ok, revoked.text
    documents = role_documents(iam, AGENT)
    assert decisions(documents, {"runner": Request("iam:PassRole", runner, now)}) == {
        "runner": DENIED
    }


async def test_an_agent_cannot_rewrite_the_tags_leash_reads_in_any_case(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    await _guarded(leash)
    iam = _iam(fresh_sandbox)
    itself, other = _arn(iam, AGENT), _arn(iam, "svc-runner")
    now = datetime.now(UTC)

    def tag(action: str, resource: str, *keys: str) -> Request:
        return Request(action, resource, now, tag_keys=keys)

    # The agent's own policies allow tagging (as a broad role would).
    documents = [
        *role_documents(iam, AGENT),
        {"Statement": [{"Effect": "Allow", "Action": "iam:*Tag*", "Resource": "*"}]},
    ]
    assert decisions(
        documents,
        {
            "untag own LEASH:AGENT": tag("iam:UntagRole", itself, "LEASH:AGENT"),
            "tag own owner": tag("iam:TagRole", itself, "owner"),
            "tag own Leash:Owner": tag("iam:TagRole", itself, "Leash:Owner"),
            "tag own backup-owner": tag("iam:TagRole", itself, "backup-owner"),
            "tag another Leash:Owner": tag("iam:TagRole", other, "Leash:Owner"),
            "untag another lEaSh:team": tag("iam:UntagRole", other, "lEaSh:team"),
            "tag another cost-center": tag("iam:TagRole", other, "cost-center"),
        },
    ) == {
        "untag own LEASH:AGENT": DENIED,
        "tag own owner": DENIED,
        "tag own Leash:Owner": DENIED,
        "tag own backup-owner": DENIED,
        "tag another Leash:Owner": DENIED,
        "untag another lEaSh:team": DENIED,
        "tag another cost-center": Decision.ALLOW,  # nothing Leash reads: not its business
    }


async def test_release_never_brings_sessions_from_before_the_quarantine_back(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    iam = _iam(fresh_sandbox)
    anything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    before_quarantine = datetime.now(UTC) - timedelta(seconds=5)
    quarantined = await say(leash, f"quarantine {AGENT} because compromised", ADMIN)
    assert quarantined.ok, quarantined.text
    released = await say(leash, f"release {AGENT}", ADMIN)
    assert released.ok, released.text
    now = datetime.now(UTC)
    documents = [*role_documents(iam, AGENT), anything]
    assert decisions(
        documents,
        {
            "old session": Request("s3:GetObject", "*", now, token_issue_time=before_quarantine),
            "new session": Request("s3:GetObject", "*", now, token_issue_time=now),
        },
    ) == {"old session": DENIED, "new session": Decision.ALLOW}


async def _granted(leash: Leash, text: str, approver: Actor) -> str:
    asked = await say(leash, text, DEV)
    request_id = REQUEST_ID.search(asked.text)
    assert request_id, asked.text
    approved = await say(leash, f"approve {request_id.group(1)} ok", approver)
    found = GRANT_ID.search(approved.text)
    assert found, approved.text
    return (await grant(leash, found.group(1))).id


@pytest.mark.parametrize("pass_role_first", [True, False], ids=["passrole-first", "read-first"])
async def test_two_live_grants_never_cancel_each_other(
    leash: Leash, fresh_sandbox: Sandbox, pass_role_first: bool
) -> None:
    iam = _iam(fresh_sandbox)
    runner = _arn(iam, "svc-runner")
    asks = [
        (f"request {AGENT} iam:PassRole on {runner} for 10m because deploy", ADMIN),
        (f"request {AGENT} s3-read for 10m because read the artefacts", OWNER_B),
    ]
    granted = [
        await _granted(leash, text, who) for text, who in asks[:: 1 if pass_role_first else -1]
    ]
    pass_role_grant = granted[0] if pass_role_first else granted[1]
    now = datetime.now(UTC)
    requests = {
        "pass runner": Request("iam:PassRole", runner, now),
        "new access key": Request("iam:CreateAccessKey", _arn(iam, AGENT), now),
        "read": Request("s3:GetObject", "arn:aws:s3:::artefacts/model.bin", now),
    }
    assert decisions(role_documents(iam, AGENT), requests) == {
        "pass runner": Decision.ALLOW,  # the other grant's persistence deny leaves it out
        "new access key": DENIED,  # still withheld: no grant approved it
        "read": Decision.ALLOW,
    }
    revoked = await say(leash, f"revoke {pass_role_grant}", DEV)
    assert revoked.ok, revoked.text
    after = decisions(role_documents(iam, AGENT), requests)
    assert after["pass runner"] == DENIED  # the read grant withholds it again
    assert after["read"] == Decision.ALLOW


def _statements(iam: Any, policy: str) -> list[dict[str, Any]]:
    document = iam.get_role_policy(RoleName=AGENT, PolicyName=policy)["PolicyDocument"]
    return list((json.loads(document) if isinstance(document, str) else document)["Statement"])


async def _restricted(leash: Leash) -> None:
    scanned = await say(leash, f"scan now {AGENT}", OWNER_B)
    assert scanned.ok, scanned.text
    preview = await say(leash, f"restrict {AGENT}", OWNER_B)
    assert preview.ok, preview.text
    confirmed = await say(leash, preview.choices[0].command, OWNER_B)
    assert confirmed.ok, confirmed.text


async def test_a_grant_passes_the_restriction_on_its_resources_until_it_ends(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    await _restricted(leash)
    iam = _iam(fresh_sandbox)
    before = _statements(iam, "leash-restrict")
    denied = [a for s in before for a in s["Action"] if a.lower().startswith("iam:")]
    assert denied, before  # the demo agent's unused IAM permissions are restricted
    runner, admin_role = _arn(iam, "svc-runner"), _arn(iam, "OrganizationAccountAccessRole")
    now = datetime.now(UTC)
    restricted = {
        "pass runner": Request("iam:PassRole", runner, now),
        "pass admin role": Request("iam:PassRole", admin_role, now),
        "create user": Request("iam:CreateUser", runner, now),
    }
    assert decisions(role_documents(iam, AGENT), restricted)["pass runner"] == DENIED

    asked = await say(
        leash, f"request {AGENT} iam:PassRole on {runner} for 10m because deploy the model", DEV
    )
    request_id = REQUEST_ID.search(asked.text)
    assert request_id, asked.text
    said = "\n".join(asked.lines)  # what the requester and the approval card are told
    assert "the grant lets iam:PassRole through its restriction" in said, said
    approved = await say(leash, f"approve {request_id.group(1)} ok", ADMIN)  # escalation
    found = GRANT_ID.search(approved.text)
    assert found, approved.text
    active = await grant(leash, found.group(1))

    after = active.expires_at + timedelta(seconds=1)
    during = {**restricted, "runner after": Request("iam:PassRole", runner, after)}
    assert decisions(role_documents(iam, AGENT), during) == {
        "pass runner": Decision.ALLOW,  # the grant works: the restriction lets it through
        "pass admin role": DENIED,  # only on the grant's resource
        "create user": DENIED,  # everything else the restriction denied stays denied
        "runner after": DENIED,  # and the restriction is whole again by itself at expiry
    }

    revoked = await say(leash, f"revoke {active.id}", DEV)
    assert revoked.ok, revoked.text
    assert decisions(role_documents(iam, AGENT), restricted)["pass runner"] == DENIED
    assert _statements(iam, "leash-restrict") == before  # the restriction as it was

    await say(leash, f"unrestrict {AGENT}", OWNER_B)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role_policy(RoleName=AGENT, PolicyName="leash-restrict")


async def test_a_restriction_placed_under_a_live_grant_lets_it_finish(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    iam = _iam(fresh_sandbox)
    runner = _arn(iam, "svc-runner")
    asked = await say(leash, f"request {AGENT} iam:PassRole on {runner} for 10m because ship", DEV)
    request_id = REQUEST_ID.search(asked.text)
    assert request_id, asked.text
    approved = await say(leash, f"approve {request_id.group(1)} ok", ADMIN)
    found = GRANT_ID.search(approved.text)
    assert found, approved.text
    active = await grant(leash, found.group(1))
    now = datetime.now(UTC)
    requests = {
        "pass runner": Request("iam:PassRole", runner, now),
        "create user": Request("iam:CreateUser", runner, now),
    }

    await _restricted(leash)
    assert decisions(role_documents(iam, AGENT), requests) == {
        "pass runner": Decision.ALLOW,
        "create user": DENIED,
    }
    revoked = await say(leash, f"revoke {active.id}", DEV)
    assert revoked.ok, revoked.text
    assert decisions(role_documents(iam, AGENT), requests)["pass runner"] == DENIED


async def test_a_grant_the_restriction_cannot_let_through_is_refused_before_anyone_approves(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    await _restricted(leash)
    asked = await say(leash, f"request {AGENT} iam:*Role for 10m because deploy", DEV)
    assert not asked.ok
    assert f"{AGENT} is restricted, and its restriction denies iam:*Role" in asked.text
    assert REQUEST_ID.search(asked.text) is None


# Twenty requests wait for one identity at once here: more than the default cap of 5.
@pytest.mark.parametrize(
    "rules", [{"requests": {"max_pending_per_identity": 20}}], indirect=True, ids=["cap 20"]
)
async def test_twenty_concurrent_grants_fit_on_a_guarded_role(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    """Room for grants (finding 8): the guardrail does not eat the budget grants share."""
    await _guarded(leash)
    iam = _iam(fresh_sandbox)
    buckets = [f"arn:aws:s3:::leash-demo-{n:02d}/*" for n in range(20)]
    request_ids = []
    for bucket in buckets:
        asked = await say(
            leash, f"request {AGENT} s3:GetObject on {bucket} for 30m because batch", DEV
        )
        found = REQUEST_ID.search(asked.text)
        assert found, asked.text
        request_ids.append(found.group(1))
    approved = await asyncio.gather(
        *(say(leash, f"approve {request_id} ok", OWNER_B) for request_id in request_ids)
    )
    assert all("is active until" in reply.text for reply in approved), [
        reply.text for reply in approved if "is active until" not in reply.text
    ]
    names = iam.list_role_policies(RoleName=AGENT)["PolicyNames"]
    assert len([n for n in names if n.startswith("leash-grant-")]) == 20
    now = datetime.now(UTC)
    documents = role_documents(iam, AGENT)
    assert decisions(
        documents,
        {
            "bucket 7": Request("s3:GetObject", "arn:aws:s3:::leash-demo-07/report.csv", now),
            "new access key": Request("iam:CreateAccessKey", _arn(iam, AGENT), now),
        },
    ) == {"bucket 7": Decision.ALLOW, "new access key": DENIED}


FINDING_5 = (
    "bedrock-agentcore:InvokeAgentRuntimeCommandShell",
    "bedrock-agentcore:UpdateHarness",
    "sagemaker:CreatePresignedDomainUrl",
    "sagemaker:CreateStudioLifecycleConfig",
    "ssm:CreateAssociation",
    "codebuild:UpdateProject",
    "states:UpdateStateMachine",
    "bedrock:PutEnforcedGuardrailConfiguration",
    "bedrock:DeleteEnforcedGuardrailConfiguration",
    "bedrock:PutResourcePolicy",
    "bedrock:DeleteResourcePolicy",
    "bedrock-agentcore:ResetTokenVaultKeyMaterial",
)


async def test_the_guardrail_read_back_denies_every_catalogue_gap_the_review_found(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    """Finding 5 (AWS): each action has a guarded twin, so each must be denied too."""
    await _guarded(leash)
    iam = _iam(fresh_sandbox)
    anything = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    documents = [*role_documents(iam, AGENT), anything]
    now = datetime.now(UTC)
    decided = decisions(documents, {a: Request(a, "*", now) for a in FINDING_5})
    assert decided == dict.fromkeys(FINDING_5, DENIED)
    assert decisions(documents, {"read": Request("s3:GetObject", "*", now)}) == {
        "read": Decision.ALLOW
    }
