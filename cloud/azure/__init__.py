"""The Microsoft Azure provider."""

from cloud.azure.provider import AzureProvider

__all__ = ["AzureProvider"]
