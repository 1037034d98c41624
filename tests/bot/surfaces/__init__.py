"""Tests of the chat surfaces."""
