"""Every sandbox start seeds the same organisation: the same account ids and identities.

moto keeps its state in module globals, so each sandbox here runs in a process of its own, as
each `make run` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from cloud.sandbox import Sandbox
from cloud.sandbox.aws.account_ids import MANAGEMENT_ACCOUNT_ID, MEMBER_ACCOUNT_IDS

_DESCRIBE = """
import json
from cloud.sandbox import Sandbox

with Sandbox.start() as sandbox:
    iam = sandbox.session().client("iam", endpoint_url=sandbox.endpoint_url)
    print(json.dumps({
        "accounts": [[a.name, a.id] for a in sandbox.accounts],
        "identities": sorted([i.arn, i.owner, i.team, i.agent] for i in sandbox.identities),
        "role_id": iam.get_role(RoleName="code-review-agent")["Role"]["RoleId"],
    }))
"""


def _start_and_describe() -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _DESCRIBE],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    described: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return described


def test_two_sandbox_starts_seed_the_same_accounts_and_identities() -> None:
    first = _start_and_describe()
    second = _start_and_describe()

    assert first == second
    assert first["accounts"] == [
        ["platform", MANAGEMENT_ACCOUNT_ID],
        ["ml-prod", MEMBER_ACCOUNT_IDS["ml-prod"]],
        ["ml-dev", MEMBER_ACCOUNT_IDS["ml-dev"]],
    ]
    assert [
        "arn:aws:iam::444455556666:role/notebook-helper-agent",
        "owner-a",
        "ml-platform",
        True,
    ] in first["identities"]


def test_a_reset_sandbox_keeps_its_account_ids(fresh_sandbox: Sandbox) -> None:
    before = fresh_sandbox.account_ids

    fresh_sandbox.reset()

    assert fresh_sandbox.account_ids == before
    assert before == (MANAGEMENT_ACCOUNT_ID, *MEMBER_ACCOUNT_IDS.values())
