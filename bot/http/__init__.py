"""HTTP: the aiohttp server, the agent API and its OpenAPI document, probes and metrics."""
