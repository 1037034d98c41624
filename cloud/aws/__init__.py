"""The AWS provider."""

from cloud.aws.provider import AwsProvider

__all__ = ["AwsProvider"]
