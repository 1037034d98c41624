"""The guardrail: a deny of privileged actions, opened per grant until it expires.

`leash-guardrail` denies every guarded action except those an approved grant exempts; each
exemption is a statement of its own that denies the action again after the grant's expiry
(`DateGreaterThan aws:CurrentTime`), so the deny resumes by itself even if Leash is down.
The last statements stop the identity from tagging or untagging itself (the owner, team and
agent marker Leash reads are tags) and from changing `leash:*` tags, in any letter case,
anywhere. An exemption denies the action everywhere but the grant's resources (`NotResource`).
The document is built deterministically, so rewriting it with the same inputs changes nothing.

The guardrail is the inline policy `leash-guardrail` while the identity's inline budget holds
it (10,240 characters for a role, 2,048 for a user). Otherwise it is split into as few
customer-managed policies `/leash/leash-guardrail-<name>-<n>` of at most 6,144 characters as
needed, attached to the identity. Every move between the two, and every rewrite, writes the
new deny before it removes the old, and undoes its writes when a later one fails.
"""

from cloud.aws.guardrail.chunks import chunk_documents, chunk_policy_name
from cloud.aws.guardrail.document import guardrail_document
from cloud.aws.guardrail.writing import guardrail

__all__ = ["chunk_documents", "chunk_policy_name", "guardrail", "guardrail_document"]
