"""The OpenAPI document of the agent API under /api/v1, as data."""

from __future__ import annotations

from typing import Any

from bot.domain.states import RequestState


def openapi_document(
    request_body: dict[str, Any], extend_body: dict[str, Any], *, max_wait_seconds: int
) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the agent API (one literal: exempt from the size rule)."""
    error = {"$ref": "#/components/schemas/Error"}
    responses = {
        code: {"description": text, "content": {"application/json": {"schema": error}}}
        for code, text in (
            ("400", "Invalid input"),
            ("401", "Missing or bad token"),
            ("403", "Not allowed"),
            ("404", "Not found"),
            ("409", "Conflict"),
            ("413", "Body too large"),
        )
    }
    request_out = {"$ref": "#/components/schemas/Request"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Leash agent API",
            "version": "1",
            "description": "Agents ask for time-limited permissions for themselves.",
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "RequestBody": request_body,
                "ExtendBody": extend_body,
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                },
                "Grant": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "state": {"type": "string"},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "artefact": {"type": ["string", "null"]},
                        "mechanism": {"type": ["string", "null"]},
                    },
                },
                "Me": {
                    "type": "object",
                    "required": ["identity", "grants", "pending", "permission_sets"],
                    "properties": {
                        "identity": {"type": "object"},
                        "grants": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Grant"},
                        },
                        "pending": {"type": "array", "items": request_out},
                        "permission_sets": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Request": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "state": {"type": "string", "enum": [s.value for s in RequestState]},
                        "tier": {"type": "string"},
                        "grant": {
                            "anyOf": [{"$ref": "#/components/schemas/Grant"}, {"type": "null"}]
                        },
                    },
                },
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/requests": {
                "post": {
                    "summary": "Ask for a permission for the token's own identity",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/RequestBody"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Created, waiting for the owner",
                            "content": {"application/json": {"schema": request_out}},
                        },
                        "200": {
                            "description": "The same request from this token, already waiting",
                            "content": {"application/json": {"schema": request_out}},
                        },
                    }
                    | responses,
                }
            },
            "/requests/{request_id}": {
                "get": {
                    "summary": "Read a request; with wait=N, wait up to N seconds for the decision",
                    "parameters": [
                        {
                            "name": "request_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "wait",
                            "in": "query",
                            "schema": {"type": "number", "minimum": 0, "maximum": max_wait_seconds},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The request",
                            "content": {"application/json": {"schema": request_out}},
                        },
                        "429": {
                            "description": "Too many waits of this identity at once; see "
                            "Retry-After",
                            "content": {"application/json": {"schema": error}},
                        },
                    }
                    | responses,
                }
            },
            "/grants/{grant_id}/release": {
                "post": {
                    "summary": "The agent is done: revoke the grant now",
                    "parameters": [
                        {
                            "name": "grant_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The grant after release",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Grant"}
                                }
                            },
                        }
                    }
                    | responses,
                }
            },
            "/grants/{grant_id}/extend": {
                "post": {
                    "summary": "Ask for more time on a live grant, approved like any request",
                    "parameters": [
                        {
                            "name": "grant_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ExtendBody"}
                            }
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "The extension request, waiting for the owner",
                            "content": {"application/json": {"schema": request_out}},
                        }
                    }
                    | responses,
                }
            },
            "/me": {
                "get": {
                    "summary": "The token's identity, its live grants and pending requests",
                    "responses": {
                        "200": {
                            "description": "The identity and its access",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Me"}}
                            },
                        }
                    }
                    | responses,
                }
            },
        },
    }
