"""End-to-end tests: the whole product against the moto server."""
