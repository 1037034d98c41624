"""/metrics as PromQL reads it: counters and histograms only go up, and `rate()` over two
scrapes is the number of events made between them (per replica, counted as they happen)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from prometheus_client.parser import text_string_to_metric_families

from bot.app import Leash
from bot.core.observations import after_commit
from bot.domain.actors import Actor
from bot.domain.states import LIVE_GRANT_STATES, ActorKind, GrantState
from bot.http.server import build_web_app
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, eventually, grant

Client = TestClient[Request, Application]
Key = tuple[str, tuple[tuple[str, str], ...]]
DEV = Actor("dev", ActorKind.USER, "console")
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
OWNER_B = Actor("owner-b", ActorKind.USER, "console")
SHORT = 2  # seconds: a grant that expires (and is revoked) while the test waits
MONOTONIC = ("counter", "histogram")


@dataclass(frozen=True)
class Scrape:
    at: float  # time.monotonic() when it was taken
    body: str
    samples: dict[Key, float]  # counter and histogram samples only
    names: frozenset[str]  # every sample name


@pytest.fixture
async def client(leash: Leash) -> AsyncIterator[Client]:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _scrape(client: Client) -> Scrape:
    response = await client.get("/metrics")
    assert response.status == 200
    body = await response.text()
    families = list(text_string_to_metric_families(body))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        if family.type in MONOTONIC
        for sample in family.samples
    }
    names = frozenset(sample.name for family in families for sample in family.samples)
    return Scrape(time.monotonic(), body, samples, names)


def _rate(first: Scrape, second: Scrape, name: str, **labels: str) -> float:
    """PromQL's rate() over exactly these two samples: increase per second."""
    key = (name, tuple(sorted(labels.items())))
    return (second.samples[key] - first.samples.get(key, 0.0)) / (second.at - first.at)


async def _request(leash: Leash, identity: str, seconds: int) -> str:
    asked = await leash.handler.handle_text(
        f"request {identity} s3-read for {seconds}s because metrics", actor=DEV
    )
    found = REQUEST_ID.search(asked.text)
    assert found, asked.text
    return found[1]


async def _approved(leash: Leash, identity: str, owner: Actor, seconds: int) -> str:
    """Ask as dev, approve as the owner: the grant's id."""
    request_id = await _request(leash, identity, seconds)
    approved = await leash.handler.handle_text(f"approve {request_id}", actor=owner)
    found = GRANT_ID.search(approved.text)
    assert found, approved.text
    return found[1]


async def _denied(leash: Leash, identity: str, owner: Actor) -> None:
    request_id = await _request(leash, identity, 600)
    denied = await leash.handler.handle_text(f"deny {request_id} because not now", actor=owner)
    assert "denied" in denied.text.lower(), denied.text


async def _ended(leash: Leash, *grant_ids: str) -> None:
    async def ended() -> bool:
        states = [(await grant(leash, grant_id)).state for grant_id in grant_ids]
        return all(state not in LIVE_GRANT_STATES for state in states)

    # Generous: on a loaded machine the revoke timers run late, not wrong.
    assert await eventually(ended, within=60)
    for grant_id in grant_ids:
        assert (await grant(leash, grant_id)).state == GrantState.REVOKED


async def test_counters_and_buckets_only_go_up_and_rate_counts_the_events_between_scrapes(
    leash: Leash, client: Client
) -> None:
    await leash.runner.start(leash.lifecycle)
    # Events before the first scrape, so that there is something that could go down.
    early = await _approved(leash, "support-triage-agent", OWNER_A, SHORT)
    await _denied(leash, "ticket-router-agent", OWNER_B)
    await _ended(leash, early)
    first = await _scrape(client)

    # Between the scrapes: 2 approved (one expires, one is revoked early), 1 denied,
    # 1 cancelled; 2 grants applied and 2 revoked, only the expired one with a revoke lag.
    expiring = await _approved(leash, "knowledge-base-agent", OWNER_A, SHORT)
    released = await _approved(leash, "code-review-agent", OWNER_B, 600)
    await _denied(leash, "invoice-reader-agent", OWNER_A)
    cancelled = await _request(leash, "model-eval-agent", 600)
    answer = await leash.handler.handle_text(f"cancel {cancelled}", actor=DEV)
    assert "cancel" in answer.text.lower(), answer.text
    done = await leash.handler.handle_text(f"revoke {released}", actor=OWNER_B)
    assert "revoked" in done.text.lower(), done.text
    await _ended(leash, expiring, released)
    second = await _scrape(client)

    for body in (first.body, second.body):
        assert "_created" not in body
    assert first.samples, "no counter or histogram in the first scrape"
    went_down = {
        key: (value, second.samples.get(key))
        for key, value in first.samples.items()
        if second.samples.get(key, -1.0) < value
    }
    assert went_down == {}

    elapsed = second.at - first.at
    expected = {
        ("leash_requests_decided_total", "approved"): 2,
        ("leash_requests_decided_total", "denied"): 1,
        ("leash_requests_decided_total", "cancelled"): 1,
        ("leash_requests_decided_total", "expired"): 0,
        ("leash_grant_transitions_total", "active"): 2,
        ("leash_grant_transitions_total", "revoked"): 2,
        ("leash_grant_transitions_total", "failed"): 0,
    }
    for (name, state), events in expected.items():
        assert _rate(first, second, name, state=state) * elapsed == pytest.approx(events), (
            name,
            state,
        )
    histograms = {
        "leash_approval_wait_seconds": 4,  # every decision, cancellations included
        "leash_grant_apply_seconds": 2,
        "leash_revoke_lag_seconds": 1,  # the one revoked early had not expired
    }
    for name, events in histograms.items():
        assert _rate(first, second, f"{name}_count") * elapsed == pytest.approx(events), name
        assert _rate(first, second, f"{name}_bucket", le="+Inf") * elapsed == pytest.approx(
            events
        ), name
        assert second.samples[(f"{name}_sum", ())] >= first.samples[(f"{name}_sum", ())]
    # Scrape one was answered, and counted, in between.
    assert _rate(first, second, "leash_http_requests_total", route="/metrics", status="2xx") * (
        elapsed
    ) == pytest.approx(1)
    # Before the first scrape: one approval and one denial, one grant applied and revoked.
    assert first.samples[("leash_approval_wait_seconds_count", ())] == 2
    assert first.samples[("leash_revoke_lag_seconds_count", ())] == 1


async def test_an_event_is_counted_once_its_transaction_commits_and_never_when_rolled_back(
    leash: Leash,
) -> None:
    counted: list[str] = []

    class Undone(Exception):
        pass

    async def undone() -> None:
        async with leash.context.transaction() as session:
            after_commit(session, lambda: counted.append("rolled back"))
            raise Undone

    with pytest.raises(Undone):
        await undone()
    assert counted == []

    async with leash.context.transaction() as session:
        after_commit(session, lambda: counted.append("first"))
        after_commit(session, lambda: counted.append("second"))
        assert counted == []  # not before the commit
    assert counted == ["first", "second"]
