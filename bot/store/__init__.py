"""Persistence: the engine and migrations, the ORM tables, the audit chain, chat references."""
