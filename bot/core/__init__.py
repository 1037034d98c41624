"""What every service shares: the context of collaborators, who may act on what
(authorizing), the people behind chat handles (persons), and notices to them."""
