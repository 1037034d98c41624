"""The chat grammar: access commands and posture commands."""
