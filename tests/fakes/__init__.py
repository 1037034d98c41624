"""Wire-level and port fakes used by the tests."""
