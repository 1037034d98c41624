"""Microsoft Teams through the Bot Framework SDK; every botbuilder import stays in this package."""

from bot.surfaces.teams.connector import TeamsAuth
from bot.surfaces.teams.surface import TeamsSurface

__all__ = ["TeamsAuth", "TeamsSurface"]
