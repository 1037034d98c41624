"""The `leash` command line."""
