"""Posture: least privilege after the fact (usage scans, findings, restriction,
quarantine, guardrails, digests)."""
