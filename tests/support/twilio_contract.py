"""Twilio's own OpenAPI contract (../shared/twilio/twilio_api_v2010.json) turned into request
checks for the test server: unknown parameters, missing required ones, wrong types and enums."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

# The project's shared/ folder sits beside the checkout (../shared from the repository root).
DEFAULT_CONTRACT = (
    Path(__file__).resolve().parents[3] / "shared" / "twilio" / "twilio_api_v2010.json"
)
CONTRACT = Path(os.environ.get("BROADCAST_TEST_TWILIO_CONTRACT", DEFAULT_CONTRACT))
ACCOUNT = "/2010-04-01/Accounts/{AccountSid}"
OPERATIONS = {
    ("POST", "Messages"): (f"{ACCOUNT}/Messages.json", "post"),
    ("GET", "Messages"): (f"{ACCOUNT}/Messages.json", "get"),
    ("POST", "Calls"): (f"{ACCOUNT}/Calls.json", "post"),
    ("GET", "Calls"): (f"{ACCOUNT}/Calls.json", "get"),
}
# Rules the contract states only in prose: a message needs a sender and content, a call needs
# something to execute.
ONE_OF = {
    ("POST", "Messages"): [("From", "MessagingServiceSid"), ("Body", "MediaUrl", "ContentSid")],
    ("POST", "Calls"): [("Url", "Twiml", "ApplicationSid")],
}


@lru_cache
def _document() -> dict[str, Any]:
    if not CONTRACT.exists():
        raise RuntimeError(
            f"Twilio's OpenAPI contract is not at {CONTRACT}: the tests expect the project's "
            "shared/ folder beside the checkout, or BROADCAST_TEST_TWILIO_CONTRACT set to the file"
        )
    with CONTRACT.open() as handle:
        return json.load(handle)


def ensure_available() -> None:
    """Raise the clear error now, where a test server is started, rather than answer every
    request with a 500 that the tests then report as Twilio internal errors."""
    _document()


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        node: Any = _document()
        for part in ref.lstrip("#/").split("/"):
            node = node[part]
        return node
    return schema


@lru_cache
def operation_schema(
    method: str, resource: str
) -> tuple[dict[str, dict[str, Any]], frozenset[str]]:
    """(parameter name -> schema, required names) for one operation, from the contract."""
    path, verb = OPERATIONS[(method, resource)]
    operation = _document()["paths"][path][verb]
    if verb == "get":
        params = {
            p["name"]: _resolve(p.get("schema", {}))
            for p in operation.get("parameters", [])
            if p.get("in") == "query"
        }
        return params, frozenset(
            p["name"]
            for p in operation["parameters"]
            if p.get("in") == "query" and p.get("required")
        )
    body = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    params = {name: _resolve(schema) for name, schema in body["properties"].items()}
    return params, frozenset(body.get("required", []))


def check(method: str, resource: str, params: dict[str, list[str]]) -> list[str]:
    """Every way ``params`` breaks the contract for this operation (empty when it conforms)."""
    known, required = operation_schema(method, resource)
    problems = [f"unknown parameter {name!r}" for name in params if name not in known]
    problems += [f"missing required parameter {name!r}" for name in sorted(required - set(params))]
    for group in ONE_OF.get((method, resource), []):
        if not any(name in params for name in group):
            problems.append(f"one of {', '.join(group)} is required")
    for name, values in params.items():
        schema = known.get(name)
        if schema is None:
            continue
        if schema.get("type") != "array" and len(values) > 1:
            problems.append(f"parameter {name!r} given {len(values)} times")
        item = _resolve(schema.get("items", {})) if schema.get("type") == "array" else schema
        problems += [p for value in values for p in _check_value(name, value, item)]
    return problems


def _check_value(name: str, value: str, schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if "enum" in schema and value not in schema["enum"]:
        return [f"{name}={value!r} is not one of {schema['enum']}"]
    if kind == "integer" and not re.fullmatch(r"-?\d+", value):
        return [f"{name}={value!r} is not an integer"]
    if kind == "number" and not re.fullmatch(r"-?\d+(\.\d+)?", value):
        return [f"{name}={value!r} is not a number"]
    if kind == "boolean" and value not in ("true", "false"):
        return [f"{name}={value!r} is not true/false"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{name}={value!r} does not match {schema['pattern']}"]
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 30):
        return [f"{name} has the wrong length"]
    if schema.get("format") == "uri" and not re.match(r"^https?://", value):
        return [f"{name}={value!r} is not an absolute URL"]
    return []
