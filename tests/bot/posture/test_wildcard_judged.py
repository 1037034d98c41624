"""A wildcard on a service Access Advisor tracks is judged by the actions it tracks.

data-pipeline-agent holds `s3:*` and used only a few S3 actions: its unused S3 management
actions are findings (and can be restricted); only S3's data-plane actions, which Access
Advisor cannot see, are "not tracked", never `s3:*` as a whole.
"""

from __future__ import annotations

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import Reply
from bot.domain.states import ActorKind

OWNER_B = Actor("owner-b", ActorKind.USER, "console")


def line(reply: Reply, start: str) -> str:
    (found,) = [text for text in reply.lines if text.startswith(start)]
    return found


async def test_s3_star_is_judged_by_its_tracked_actions_and_restricted_by_them(
    leash: Leash,
) -> None:
    await leash.lifecycle.least_privilege.scanner.scan()
    shown = await leash.handler.handle_text("unused data-pipeline-agent", actor=OWNER_B)
    assert shown.ok, shown.text
    assert shown.text == (
        "data-pipeline-agent: 18 unused permissions, 1 used, 18 not tracked by the cloud"
    )
    untracked = line(shown, "Not tracked by the cloud")
    assert "s3:*" not in untracked
    assert "iam:PassRole" in untracked
    assert "s3:AbortMultipartUpload" in untracked  # the data plane, which is not tracked
    assert "s3:CreateBucket" in line(shown, "Unused")

    preview = await leash.handler.handle_text("restrict data-pipeline-agent", actor=OWNER_B)
    assert preview.ok, preview.text
    denied = line(preview, "Deny")
    assert "s3:CreateBucket" in denied
    assert "s3:GetBucketLocation" not in denied  # used
    assert "s3:GetObject" not in denied  # not tracked: never restricted
