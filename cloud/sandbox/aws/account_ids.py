"""Fixed ids for the demo organisation, so every sandbox start makes the same accounts.

moto draws a new member account's id at random (`moto.organizations.utils.
make_random_account_id`, called while `FakeAccount` is built), so each sandbox start used to
create `ml-prod` and `ml-dev` under new ids, and a Leash database kept from an earlier run still
held the old accounts' identities as present. Two things make the seed the same every time:

- `install(pinned)` wraps moto's Organizations `create_account` so that an account created
  under a pinned name gets its pinned id (a second account of that name in the same
  organisation gets a random one, as AWS would give it a new id);
- `RANDOM_SEED` seeds moto's own random generator before the seed (its documented
  `POST /moto-api/seed`, `MotoServer.seed_random`), so the organisation, root, role and access
  key ids it draws while seeding repeat too.

The management account is moto's default account (the sandbox's `testing` credentials).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moto.organizations.models import OrganizationsBackend

MANAGEMENT_ACCOUNT_ID = "123456789012"  # moto's DEFAULT_ACCOUNT_ID
# The example ids AWS's own documentation uses for other accounts.
MEMBER_ACCOUNT_IDS: Mapping[str, str] = {"ml-prod": "111122223333", "ml-dev": "444455556666"}
RANDOM_SEED = 20

_ORIGINAL = "_leash_original"
# The id the account being created in this (moto server) thread is to get.
_next = threading.local()


def install(pinned: Mapping[str, str] = MEMBER_ACCOUNT_IDS) -> None:
    """Patch moto's Organizations backend in this process (idempotent) to honour `pinned`."""
    from moto.organizations import utils
    from moto.organizations.models import OrganizationsBackend

    random_id = getattr(utils.make_random_account_id, _ORIGINAL, utils.make_random_account_id)
    create = getattr(OrganizationsBackend.create_account, _ORIGINAL, None)
    create = create or OrganizationsBackend.create_account
    fixed = dict(pinned)

    def make_account_id() -> str:
        chosen: str | None = getattr(_next, "account_id", None)
        _next.account_id = None
        return chosen or random_id()

    def create_account(self: OrganizationsBackend, **kwargs: Any) -> dict[str, Any]:
        wanted = fixed.get(str(kwargs.get("AccountName", "")))
        taken = {account.id for account in self.accounts}
        _next.account_id = wanted if wanted not in taken else None
        try:
            return create(self, **kwargs)
        finally:
            _next.account_id = None

    _mark(make_account_id, random_id)
    _mark(create_account, create)
    utils.make_random_account_id = make_account_id
    OrganizationsBackend.create_account = create_account  # type: ignore[method-assign]


def _mark(wrapper: Callable[..., Any], original: Callable[..., Any]) -> None:
    setattr(wrapper, _ORIGINAL, original)
