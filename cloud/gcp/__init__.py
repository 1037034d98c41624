"""The Google Cloud provider."""

from cloud.gcp.provider import GcpProvider

__all__ = ["GcpProvider"]
