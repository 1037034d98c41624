"""Inventory: the identities Leash knows, who owns them, and how they are reported."""
