"""Splitting a guardrail too big for the inline budget into customer-managed policies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

from cloud.aws import inline
from cloud.aws.guardrail.document import GUARDRAIL_SID
from cloud.aws.inline import MANAGED_POLICY_BUDGET
from cloud.aws.policy_document import POLICY_VERSION, PolicyDocument
from cloud.base import GUARDRAIL_ARTEFACT, CloudLimitError, IdentityRef

MAX_CHUNKS = 20


class _Chunk:
    """One managed document being filled: its pieces (statement index, actions) and room."""

    def __init__(self, budget: int) -> None:
        self.pieces: list[tuple[int, list[str]]] = []
        self.room = budget - _size({"Version": POLICY_VERSION, "Statement": []})

    def fitting(self, actions: Sequence[str], overhead: int) -> int:
        """Count the first `actions` that fit here in a statement `overhead` long without them."""
        left = self.room - overhead - (1 if self.pieces else 0) + 1  # no comma before the first
        sizes = accumulate(len(json.dumps(action)) + 1 for action in actions)
        return sum(1 for size in sizes if size <= left)  # sizes only grow: a prefix

    def add(self, index: int, actions: list[str], overhead: int) -> None:
        names = sum(len(json.dumps(action)) + 1 for action in actions) - 1
        self.room -= overhead + (1 if self.pieces else 0) + names
        self.pieces.append((index, actions))

    def document(self, statements: Sequence[dict[str, Any]]) -> PolicyDocument:
        """Build the document: the pieces in the order of the full guardrail's statements."""
        pieces = sorted(self.pieces, key=lambda piece: piece[0])
        chosen = [{**statements[index], "Action": actions} for index, actions in pieces]
        return {"Version": POLICY_VERSION, "Statement": chosen}


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _pack(statements: list[dict[str, Any]], count: int, budget: int) -> list[_Chunk] | None:
    """Fill `count` documents: other statements whole where they fit, then the main deny."""
    chunks = [_Chunk(budget) for _ in range(count)]
    main_last = sorted(range(len(statements)), key=lambda i: statements[i]["Sid"] == GUARDRAIL_SID)
    for index in main_last:
        statement = statements[index]
        actions: list[str] = list(statement["Action"])
        overhead = _size({**statement, "Action": []})
        whole = [chunk for chunk in chunks if chunk.fitting(actions, overhead) == len(actions)]
        split = statement["Sid"] == GUARDRAIL_SID or not whole
        for chunk in chunks if split else whole[:1]:  # a split goes over the documents in turn
            take = chunk.fitting(actions, overhead)
            if take:
                chunk.add(index, actions[:take], overhead)
                actions = actions[take:]
        if actions:
            return None
    return chunks


def chunk_documents(
    document: PolicyDocument, budget: int = MANAGED_POLICY_BUDGET
) -> list[PolicyDocument]:
    """Split a guardrail into as few documents of at most `budget` compact characters as fit.

    The main deny's action list is spread over the documents; the exemption and tag statements
    go whole into the first document with room (split only if none has). A statement appears
    at most once per document, so statement ids stay unique within each.
    """
    statements: list[dict[str, Any]] = list(document["Statement"])
    for count in range(1, MAX_CHUNKS + 1):
        packed = _pack(statements, count, budget)
        if packed is not None:
            return [chunk.document(statements) for chunk in packed if chunk.pieces]
    raise CloudLimitError(
        f"the guardrail does not fit in {MAX_CHUNKS} managed policies of {budget} characters",
        code="ManagedPolicyBudget",
    )


def chunk_policy_name(identity: IdentityRef, number: int) -> str:
    """Name the customer-managed policy holding part `number` of the identity's guardrail."""
    suffix = f"-{number}"
    base = inline.artefact_policy_name(GUARDRAIL_ARTEFACT, identity)
    return base[: inline.MAX_POLICY_NAME - len(suffix)] + suffix
