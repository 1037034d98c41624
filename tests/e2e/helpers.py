"""Small helpers for reading the cloud and the database in end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from sqlmodel import col, select

from bot.app import Leash
from bot.store.tables import AuditEvent, Grant
from cloud.sandbox import Sandbox

REQUEST_ID = re.compile(r"\b(r-[a-z0-9]{8})\b")
GRANT_ID = re.compile(r"\b(g-[a-z0-9]{8})\b")


_SESSIONS: dict[str, Any] = {}
_CLIENTS: dict[tuple[str, str], Any] = {}


def _session(sandbox: Sandbox) -> Any:
    """One boto3 session per sandbox server: a new session loads the service models again
    (about 0.1 s per client, several times in every test that reads the cloud)."""
    if sandbox.endpoint_url not in _SESSIONS:
        _SESSIONS[sandbox.endpoint_url] = sandbox.session()
    return _SESSIONS[sandbox.endpoint_url]


def _client(sandbox: Sandbox, service: str) -> Any:
    """A management-account client for `service` on the sandbox (boto3 clients are stateless
    between calls and safe to share)."""
    key = (sandbox.endpoint_url, service)
    if key not in _CLIENTS:
        _CLIENTS[key] = _session(sandbox).client(service, endpoint_url=sandbox.endpoint_url)
    return _CLIENTS[key]


def inline_policy(sandbox: Sandbox, role: str, name: str) -> dict[str, Any] | None:
    """Read a role's inline policy from the moto server with real boto3, or None."""
    iam = _client(sandbox, "iam")
    try:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None
    if isinstance(document, str):
        return dict(json.loads(unquote(document)))
    return dict(document)


def inline_policy_names(sandbox: Sandbox, role: str) -> list[str]:
    iam = _client(sandbox, "iam")
    return list(iam.list_role_policies(RoleName=role)["PolicyNames"])


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float, step: float = 0.1
) -> bool:
    """Poll until `check` holds or the time is up; return whether it held."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(step)
    return await check()


async def grant(leash: Leash, grant_id: str) -> Grant:
    async with leash.context.sessions() as session:
        found = await session.get(Grant, grant_id)
    assert found is not None
    return found


async def audit_types(leash: Leash, *, grant_id: str | None = None) -> list[str]:
    async with leash.context.sessions() as session:
        query = select(AuditEvent).order_by(col(AuditEvent.seq))
        if grant_id is not None:
            query = query.where(col(AuditEvent.grant_id) == grant_id)
        return [event.event_type for event in (await session.exec(query)).all()]


def account_iam(sandbox: Sandbox, account_name: str) -> Any:
    """An IAM client acting in one of the sandbox organisation's accounts (as its admin role)."""
    account = sandbox.account(account_name)
    if account.management:
        return _client(sandbox, "iam")
    sts = _client(sandbox, "sts")
    role = f"arn:aws:iam::{account.id}:role/OrganizationAccountAccessRole"
    creds = sts.assume_role(RoleArn=role, RoleSessionName="leash-tests")["Credentials"]
    return _session(sandbox).client(
        "iam",
        endpoint_url=sandbox.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
