"""The embedded GCP emulator: wire-level fakes that the real google-cloud clients talk to.

REST (Resource Manager v3, IAM v2 deny policies, Recommender v1) is served by aiohttp and IAM
admin v1 by gRPC, each on a free loopback port in background threads; nothing runs on import.
"""

from __future__ import annotations

from cloud.sandbox.gcp.emulator import GcpEmulator
from cloud.sandbox.gcp.state import ApiCall

__all__ = ["ApiCall", "GcpEmulator"]
