"""The embedded Azure emulator: ARM and Microsoft Graph fakes that the real Azure SDKs talk to.

One aiohttp server on a free loopback port serves both, over https with a self-signed
certificate made at start (the SDKs send bearer tokens over https only); nothing runs on import.
"""

from __future__ import annotations

from cloud.sandbox.azure.emulator import AsyncEmulatorCredential, AzureEmulator, EmulatorCredential
from cloud.sandbox.azure.state import ApiCall

__all__ = ["ApiCall", "AsyncEmulatorCredential", "AzureEmulator", "EmulatorCredential"]
