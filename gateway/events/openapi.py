"""The events feature's part of the OpenAPI document (paths and schemas)."""

from __future__ import annotations

from typing import Any

from gateway.events.model import EVENT_TYPES

PROBLEM = {"$ref": "#/components/responses/Problem"}
TYPES = ", ".join(sorted(EVENT_TYPES))


def _q(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


AFTER = _q(
    "after",
    "`next_cursor` of the previous page, or an event id",
    {"type": "string", "pattern": r"^\d{1,20}-\d{1,20}$"},
)
TYPES_PARAM = _q("types", f"comma list of {TYPES}", {"type": "string"})
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
EVENT_ID = {
    "name": "event_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
}


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {
        "description": description,
        "content": {"application/json": {"schema": ref}},
    }


EVENT_PATHS: dict[str, Any] = {
    "/v1/events": {
        "get": {
            "summary": "Invoice change events after a cursor (paged, long-poll)",
            "parameters": [
                AFTER,
                TYPES_PARAM,
                _q(
                    "limit",
                    "page size",
                    {"type": "integer", "minimum": 1, "maximum": 500},
                ),
                _q(
                    "wait_s",
                    "wait up to this long for an event when there is none",
                    {"type": "integer", "minimum": 0, "maximum": 30},
                ),
            ],
            "responses": {
                "200": _json("EventPage"),
                "400": PROBLEM,
                "410": PROBLEM,
                "503": PROBLEM,
                "401": PROBLEM,
                "403": PROBLEM,
            },
        }
    },
    "/v1/events/stream": {
        "get": {
            "summary": "Invoice change events as Server-Sent Events (`Last-Event-ID` resumes)",
            "parameters": [
                AFTER,
                TYPES_PARAM,
                {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {
                    "description": "an endless event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                "400": PROBLEM,
                "410": PROBLEM,
                "503": PROBLEM,
                "401": PROBLEM,
                "403": PROBLEM,
            },
        }
    },
    "/v1/webhooks/{name}/deliveries": {
        "get": {
            "summary": "A webhook's recent attempts and dead letters (admin scope)",
            "parameters": [NAME],
            "responses": {
                "200": _json("DeadLetters"),
                "401": PROBLEM,
                "403": PROBLEM,
                "404": PROBLEM,
            },
        }
    },
    "/v1/webhooks/{name}/deliveries/{event_id}/replay": {
        "post": {
            "summary": "Queue a dead letter for delivery again (admin scope)",
            "parameters": [NAME, EVENT_ID],
            "responses": {
                "202": {"description": "queued"},
                "401": PROBLEM,
                "403": PROBLEM,
                "404": PROBLEM,
            },
        }
    },
}
EVENT_SCHEMAS: dict[str, Any] = {
    "Event": {
        "type": "object",
        "required": ["id", "type", "timestamp", "connection", "data"],
        "properties": {
            "id": {"type": "string", "description": "also the cursor and webhook-id"},
            "type": {"type": "string", "enum": sorted(EVENT_TYPES)},
            "timestamp": {"type": "string", "format": "date-time"},
            "connection": {"type": "string"},
            "data": {"$ref": "#/components/schemas/Invoice"},
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["data", "next_cursor"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
            "next_cursor": {"type": "string"},
        },
    },
    "DeadLetters": {
        "type": "object",
        "properties": {
            "webhook": {"type": "string"},
            "recent": {"type": "array", "items": {"type": "object"}},
            "dead_letters": {"type": "array", "items": {"type": "object"}},
        },
    },
}
