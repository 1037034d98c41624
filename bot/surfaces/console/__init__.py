"""The terminal chat: the same commands as Slack, typed with line editing, history, completion
and buttons pressed by number."""

from bot.surfaces.console.render import format_reply
from bot.surfaces.console.surface import ConsoleSurface, default_attachments_dir

__all__ = ["ConsoleSurface", "default_attachments_dir", "format_reply"]
