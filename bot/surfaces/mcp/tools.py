"""Leash's MCP tools as a language model reads them: names, descriptions and input schemas.

Each tool's input is a pydantic model; its JSON schema is the tool's `inputSchema` and the same
model validates every call, so what the model is told and what is accepted cannot drift.
Strings carrying a control or text-direction character are refused before anything is asked.
Nothing here imports the `mcp` SDK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.domain.errors import InvalidInputError
from bot.domain.text_safety import refusal

MAX_WAIT_SECONDS = 60  # the agent API's limit on one wait
DURATION_PATTERN = r"^\s*\d+\s*[a-zA-Z]+(\s*\d+\s*[a-zA-Z]+)*\s*$"
DURATION = Field(
    min_length=1,
    max_length=32,
    pattern=DURATION_PATTERN,
    description="How long, e.g. '15m', '1h', '1h30m'. Ask for the shortest time the task needs.",
)
REASON = Field(
    min_length=1,
    max_length=1000,
    description="Why you need it, in one or two sentences a human owner will read: the task "
    "and why it needs these permissions (e.g. 'summarise support ticket 4711: read its "
    "attachments in s3://tickets').",
)
REQUEST_ID = Field(
    min_length=3, max_length=20, pattern=r"^r-[A-Za-z0-9]+$", description="e.g. 'r-1a2b3c4d'"
)
GRANT_ID = Field(
    min_length=3, max_length=20, pattern=r"^g-[A-Za-z0-9]+$", description="e.g. 'g-1a2b3c4d'"
)


class ToolInput(BaseModel):
    """A tool's arguments: nothing unknown, no control or text-direction characters."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _safe_text(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                for text in value if isinstance(value, list) else [value]:
                    prose = name == "reason"
                    if isinstance(text, str) and (refused := refusal(text, str(name), prose=prose)):
                        raise ValueError(refused)
        return data


class RequestAccess(ToolInput):
    permission_set: str | None = Field(
        default=None,
        max_length=128,
        description="A named permission set from list_my_access (preferred when one fits). "
        "Give either this or `actions`, not both.",
    )
    actions: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Exactly what you need instead of a set: AWS actions ('s3:GetObject'), "
        "Google Cloud roles ('roles/storage.objectViewer') or Azure role names ('Storage Blob "
        "Data Reader'), for your identity's cloud. No wildcards unless the task truly needs them.",
    )
    resources: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Optional: limit the grant to these resources (AWS ARNs, Azure scopes). "
        "Narrower is approved sooner.",
    )
    duration: str = DURATION
    reason: str = REASON

    @model_validator(mode="after")
    def _one_of(self) -> RequestAccess:
        if bool(self.permission_set) == bool(self.actions):
            raise ValueError("give either permission_set or actions")
        return self


class WaitForDecision(ToolInput):
    request_id: str = REQUEST_ID
    wait_seconds: float = Field(
        default=30,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description=f"How long to wait at most (0-{MAX_WAIT_SECONDS} s). It returns as soon as "
        "the owner decides; if still pending, call it again.",
    )


class ListMyAccess(ToolInput):
    pass


class ReleaseAccess(ToolInput):
    grant_id: str = GRANT_ID


class ExtendAccess(ToolInput):
    grant_id: str = GRANT_ID
    duration: str = Field(
        min_length=1,
        max_length=32,
        pattern=DURATION_PATTERN,
        description="How much more time, e.g. '30m'.",
    )
    reason: str = REASON


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    title: str
    description: str
    model: type[ToolInput]
    read_only: bool

    def input_schema(self) -> dict[str, Any]:
        return self.model.model_json_schema()


TOOLS = (
    ToolSpec(
        "request_access",
        "Ask for temporary cloud access",
        "Ask your human owner for temporary cloud permissions for YOUR OWN identity (the one "
        "your Leash token is bound to). Use it when a cloud call failed with AccessDenied / "
        "permission denied, or before a task you know needs more than you have. Ask only for "
        "what the task needs (a permission set, or exact actions or roles, narrowed to "
        "resources when you can), for the shortest time, and say why in `reason`: a person "
        "reads it. Returns the request id, its tier, who must approve and the deadline for "
        "their decision. Then call wait_for_decision. Nothing is granted until a human approves.",
        RequestAccess,
        read_only=False,
    ),
    ToolSpec(
        "wait_for_decision",
        "Wait for the owner's decision",
        "Wait (up to wait_seconds) for the decision on a request you made; it returns as soon "
        "as the owner decides. Approved: the grant id and its expiry, and when it takes effect "
        "- cloud permissions propagate (AWS IAM within ~10 s), so if a call still fails with "
        "AccessDenied before that time, wait a few seconds and retry it; do not ask again. "
        "Denied: the owner's reason (do not retry the same request). Still pending: nothing is "
        "held, call this tool again.",
        WaitForDecision,
        read_only=True,
    ),
    ToolSpec(
        "list_my_access",
        "List my access",
        "List your identity's live grants (with expiry), your pending requests, and the "
        "permission sets you may ask for. Use it before asking, to reuse a live grant or pick "
        "a permission set.",
        ListMyAccess,
        read_only=True,
    ),
    ToolSpec(
        "release_access",
        "Release a grant now",
        "Give a grant back as soon as the task that needed it is done: Leash revokes it in the "
        "cloud now instead of at its expiry. Always release what you no longer need.",
        ReleaseAccess,
        read_only=False,
    ),
    ToolSpec(
        "extend_access",
        "Ask for more time on a grant",
        "Ask for more time on one of your live grants when the task is not done before it "
        "expires. It is a new request the owner approves like any other (call "
        "wait_for_decision with the returned request id); the grant keeps its expiry until then.",
        ExtendAccess,
        read_only=False,
    ),
)
BY_NAME = {tool.name: tool for tool in TOOLS}


def parse(name: str, arguments: dict[str, Any] | None) -> ToolInput:
    """A tool's validated arguments; InvalidInputError with a clear sentence if they are not."""
    tool = BY_NAME.get(name)
    if tool is None:
        known = ", ".join(BY_NAME)
        raise InvalidInputError(f"There is no tool '{name[:40]}'. Leash's tools are: {known}.")
    try:
        return tool.model.model_validate(arguments or {})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        prefix = f"{where}: " if where else ""
        raise InvalidInputError(f"{name}: {prefix}{message}", field=where[:100] or None) from None
