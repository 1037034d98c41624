"""Microsoft Teams through the Bot Framework SDK; every botbuilder import stays in this package."""

from bot.surfaces.teams.connector import TeamsAuth
from bot.surfaces.teams.surface import TeamsSurface
from bot.surfaces.teams.tenants import Tenants

__all__ = ["TeamsAuth", "TeamsSurface", "Tenants"]
