"""Named crash points in the grant lifecycle: a fault-injection drill for tests and operators.

Set `LEASH_CRASH_AT=<step>` and Leash kills itself with SIGKILL (no clean-up, no flush) the
moment it reaches that step. Restart it without the variable and watch it recover: the grant
must end up revoked in the cloud and in the database, with one `grant.applied` and one
`grant.revoked` audit event. Operators can run the same drill against a staging cloud.

The steps, in the order a grant passes them:

- `approved`: the approval (request + grant row in `applying`) is committed; nothing in the cloud
- `granted-in-cloud`: the cloud wrote the grant; the database still says `applying`
- `grant-committed`: the database says `active`; no revoke timer armed yet
- `timer-armed`: the revoke timer is armed
- `revoke-claimed`: the revoke is claimed (`revoking`); the grant is still in the cloud
- `revoked-in-cloud`: the cloud removed the grant; the database still says `revoking`
- `revoke-committed`: the database says `revoked`

The services only call the `CrashPoints` port (`bot.domain.ports`); `bot.app` wires `KillAt`
when the variable names a step and the no-op `NoCrashes` otherwise, so nothing in the request
or grant path reads the environment or sends a signal.
"""

from __future__ import annotations

import os
import signal

from bot.domain.ports import CRASH_STEPS, CrashPoints, NoCrashes

ENVIRONMENT_VARIABLE = "LEASH_CRASH_AT"
STEPS = CRASH_STEPS


def armed_step() -> str | None:
    """The step `LEASH_CRASH_AT` names, or None; a name that is not a step raises ValueError.

    Checked when Leash starts, so a misspelt drill fails loudly instead of never crashing.
    """
    step = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if not step:
        return None
    if step not in STEPS:
        raise ValueError(
            f"{ENVIRONMENT_VARIABLE}={step!r} is not a crash point; use one of: {', '.join(STEPS)}"
        )
    return step


class KillAt:
    """The drill: kill this process at once (SIGKILL) when the grant reaches `step`."""

    def __init__(self, step: str) -> None:
        assert step in STEPS, f"unknown crash point {step!r}"
        self._step = step

    def reached(self, step: str, *, grant_id: str | None = None) -> None:
        assert step in STEPS, f"unknown crash point {step!r}"
        if step != self._step:
            return
        about = f" (grant {grant_id})" if grant_id else ""
        # Unbuffered, so the line is out before the kill: a drill should say what it did.
        os.write(2, f"{ENVIRONMENT_VARIABLE}: killing Leash at {step}{about}\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)


def from_environment() -> CrashPoints:
    """`KillAt` the step `LEASH_CRASH_AT` names, or `NoCrashes` (ValueError if misspelt)."""
    step = armed_step()
    return NoCrashes() if step is None else KillAt(step)
