"""Slack: every slack_bolt / slack_sdk import lives in this package."""

from bot.surfaces.slack.inbound import slack_route
from bot.surfaces.slack.surface import SlackSurface

__all__ = ["SlackSurface", "slack_route"]
