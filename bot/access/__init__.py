"""Access: requests, their approval, grants from apply to revoke, the sweep, agent tokens."""
