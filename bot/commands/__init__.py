"""Chat text and button payloads -> Command -> lifecycle call -> Reply."""
