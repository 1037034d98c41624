"""Tests of the cloud providers and the sandbox."""
