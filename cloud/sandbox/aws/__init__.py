"""The AWS half of the sandbox: moto, extended (Access Advisor, CloudTrail, cross-account
roles, IAM limits, faults, call log) and seeded with the demo organisation."""
