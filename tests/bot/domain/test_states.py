"""The transition table: every move the lifecycle makes is legal, and nothing else is."""

from __future__ import annotations

import itertools

import pytest

from bot.domain.errors import IllegalTransitionError, LeashError
from bot.domain.states import (
    ENFORCEMENT_MOVES,
    GRANT_MOVES,
    INITIAL,
    LIVE_GRANT_STATES,
    MOVES,
    REQUEST_MOVES,
    EnforcementState,
    GrantState,
    Machine,
    RequestState,
    check_move,
    check_start,
    is_final,
    is_legal,
    sources,
)

STATES: dict[Machine, list[str]] = {
    Machine.REQUEST: list(RequestState),
    Machine.GRANT: list(GrantState),
    Machine.ENFORCEMENT: list(EnforcementState),
}
R, G, E = RequestState, GrantState, EnforcementState

# Written out once more by hand, from what the lifecycle does (bot/access, bot/posture).
EXPECTED: dict[Machine, set[tuple[str, str]]] = {
    Machine.REQUEST: {
        (R.PENDING, R.PENDING),
        (R.PENDING, R.APPROVED),
        (R.PENDING, R.DENIED),
        (R.PENDING, R.CANCELLED),
        (R.PENDING, R.EXPIRED),
    },
    Machine.GRANT: {
        (G.APPLYING, G.APPLYING),
        (G.APPLYING, G.ACTIVE),
        (G.APPLYING, G.FAILED),
        (G.ACTIVE, G.ACTIVE),
        (G.ACTIVE, G.REVOKING),
        (G.REVOKE_FAILED, G.REVOKING),
        (G.IRREVOCABLE, G.REVOKING),
        (G.REVOKING, G.REVOKING),
        (G.REVOKING, G.REVOKED),
        (G.REVOKING, G.REVOKE_FAILED),
        (G.REVOKING, G.IRREVOCABLE),
    },
    Machine.ENFORCEMENT: {
        (E.APPLYING, E.ACTIVE),
        (E.APPLYING, E.FAILED),
        (E.ACTIVE, E.RELEASED),
    },
}


def test_the_table_is_what_the_lifecycle_does() -> None:
    assert EXPECTED[Machine.REQUEST] == REQUEST_MOVES
    assert EXPECTED[Machine.GRANT] == GRANT_MOVES
    assert EXPECTED[Machine.ENFORCEMENT] == ENFORCEMENT_MOVES
    assert {kind: set(moves) for kind, moves in MOVES.items()} == EXPECTED


@pytest.mark.parametrize(
    ("kind", "start", "end"),
    [(kind, start, end) for kind, moves in EXPECTED.items() for start, end in sorted(moves)],
)
def test_every_legal_move_is_allowed(kind: Machine, start: str, end: str) -> None:
    assert is_legal(kind, start, end)
    check_move(kind, start, end)  # does not raise


@pytest.mark.parametrize(
    ("kind", "start", "end"),
    [
        (Machine.GRANT, G.REVOKED, G.ACTIVE),
        (Machine.GRANT, G.REVOKED, G.REVOKING),
        (Machine.GRANT, G.FAILED, G.ACTIVE),
        (Machine.GRANT, G.FAILED, G.APPLYING),
        (Machine.GRANT, G.ACTIVE, G.APPLYING),
        (Machine.GRANT, G.ACTIVE, G.REVOKED),  # a revocation always claims first
        (Machine.GRANT, G.ACTIVE, G.FAILED),
        (Machine.GRANT, G.APPLYING, G.REVOKING),
        (Machine.GRANT, G.REVOKE_FAILED, G.ACTIVE),
        (Machine.GRANT, G.IRREVOCABLE, G.REVOKED),
        (Machine.GRANT, G.REVOKED, G.REVOKED),
        (Machine.REQUEST, R.DENIED, R.APPROVED),
        (Machine.REQUEST, R.APPROVED, R.DENIED),
        (Machine.REQUEST, R.APPROVED, R.PENDING),
        (Machine.REQUEST, R.EXPIRED, R.APPROVED),
        (Machine.REQUEST, R.CANCELLED, R.PENDING),
        (Machine.REQUEST, R.EXPIRED, R.EXPIRED),
        (Machine.ENFORCEMENT, E.RELEASED, E.ACTIVE),
        (Machine.ENFORCEMENT, E.REPORTED, E.ACTIVE),
        (Machine.ENFORCEMENT, E.FAILED, E.APPLYING),
    ],
)
def test_an_illegal_move_is_refused(kind: Machine, start: str, end: str) -> None:
    assert not is_legal(kind, start, end)
    with pytest.raises(IllegalTransitionError) as refused:
        check_move(kind, start, end)
    assert isinstance(refused.value, LeashError)
    assert refused.value.status == 409
    assert refused.value.code == "illegal_transition"
    assert start in str(refused.value)
    assert end in str(refused.value)


@pytest.mark.parametrize("kind", list(Machine))
def test_every_pair_outside_the_table_is_refused(kind: Machine) -> None:
    for start, end in itertools.product(STATES[kind], repeat=2):
        if (start, end) in EXPECTED[kind]:
            continue
        with pytest.raises(IllegalTransitionError):
            check_move(kind, start, end)


def test_final_states_have_no_way_out() -> None:
    finals = {kind: {s for s in STATES[kind] if is_final(kind, s)} for kind in Machine}
    assert finals[Machine.REQUEST] == {R.APPROVED, R.DENIED, R.CANCELLED, R.EXPIRED}
    assert finals[Machine.GRANT] == {G.REVOKED, G.FAILED}
    assert finals[Machine.ENFORCEMENT] == {E.RELEASED, E.FAILED, E.REPORTED}
    # The live grant states are exactly the grant states with a way out.
    assert set(LIVE_GRANT_STATES) == set(G) - finals[Machine.GRANT]


def test_every_state_is_reachable_from_where_records_start() -> None:
    for kind in Machine:
        reached = set(INITIAL[kind])
        while True:
            more = {end for start, end in MOVES[kind] if start in reached} - reached
            if not more:
                break
            reached |= more
        assert reached == set(STATES[kind]), kind


def test_sources_of_a_revocation_claim() -> None:
    assert sources(Machine.GRANT, G.REVOKING) == {
        G.ACTIVE,
        G.REVOKE_FAILED,
        G.IRREVOCABLE,
        G.REVOKING,
    }
    assert sources(Machine.REQUEST, R.APPROVED) == {R.PENDING}


def test_records_start_where_the_table_says() -> None:
    check_start(Machine.REQUEST, R.PENDING)
    check_start(Machine.GRANT, G.APPLYING)
    check_start(Machine.ENFORCEMENT, E.APPLYING)
    check_start(Machine.ENFORCEMENT, E.REPORTED)
    with pytest.raises(IllegalTransitionError):
        check_start(Machine.GRANT, G.ACTIVE)
    with pytest.raises(IllegalTransitionError):
        check_start(Machine.REQUEST, R.APPROVED)
