"""The models against the gateway's OpenAPI document, so the SDK and the API cannot drift apart.

Every field a model reads must exist wherever the document describes that answer (its response
schema for the status, resolved through ``$ref``, nested objects and arrays included), and a field
the model requires must not be optional there. Where the document does not describe an answer
yet, only the route itself is checked; the models are also validated against the gateway's real
answers here and in every other test.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from gitblock import ActionResult, Health, Model, Network, NetworkInfo, Node, Registered, Rewards

from .conftest import LocalNetwork

# (model, method, path as the document spells it, status, where the model sits in the body)
ANSWERS: list[tuple[type[BaseModel], str, str, int, tuple[str, ...]]] = [
    (Model, "get", "/v1/models", 200, ("data", "[]")),
    (Node, "get", "/v1/nodes", 200, ("data", "[]")),
    (Node, "get", "/v1/nodes/{nodeId}", 200, ()),
    (Health, "get", "/health", 200, ()),
    (NetworkInfo, "get", "/v1/network", 200, ()),
    (Rewards, "get", "/v1/rewards/{operator}", 200, ()),
    (Registered, "post", "/v1/nodes/register", 201, ()),
    (ActionResult, "post", "/v1/nodes/{nodeId}/reinstate", 200, ()),
    (ActionResult, "post", "/v1/nodes/{nodeId}/retire", 200, ()),
]


def _resolve(doc: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any] | None:
    while schema is not None and "$ref" in schema:
        ref: str = schema["$ref"]
        assert ref.startswith("#/"), f"external $ref {ref}"
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        schema = target
    return schema


def _inner(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (directly, in a list or optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) in (typing.Union, list):
        for arg in typing.get_args(annotation):
            found = _inner(arg)
            if found:
                return found
    return None


def drift(doc: dict[str, Any], model: type[BaseModel], schema: dict[str, Any] | None, where: str) -> list[str]:
    """Every field of `model` the described `schema` lacks (or makes optional while the model requires it)."""
    schema = _resolve(doc, schema)
    if schema is None:
        return []
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema:  # a field must exist in one of the alternatives
            alternatives = [_resolve(doc, s) or {} for s in schema[combinator]]
            merged: dict[str, Any] = {"properties": {}, "required": []}
            for alt in alternatives:
                merged["properties"].update(alt.get("properties", {}))
                merged["required"] += alt.get("required", [])
            schema = merged
    if "properties" not in schema:
        return []
    problems = []
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    for name, field in model.model_fields.items():
        wire = field.alias or name
        if wire not in properties:
            problems.append(f"{where}.{wire}: read by {model.__name__}, absent from the document")
            continue
        if field.is_required() and required and wire not in required:
            problems.append(f"{where}.{wire}: required by {model.__name__}, optional in the document")
        nested = _inner(field.annotation)
        if nested:
            sub = _resolve(doc, properties[wire])
            if sub is not None and sub.get("type") == "array":
                sub = sub.get("items")
            problems += drift(doc, nested, sub, f"{where}.{wire}")
    return problems


def _answer_schema(doc: dict[str, Any], method: str, path: str, status: int, at: tuple[str, ...]) -> dict[str, Any] | None:
    responses = doc["paths"][path][method].get("responses", {})
    response = _resolve(doc, responses.get(str(status)))
    schema = _resolve(doc, ((response or {}).get("content", {}).get("application/json") or {}).get("schema"))
    for step in at:
        if schema is None:
            return None
        schema = _resolve(doc, schema.get("items") if step == "[]" else schema.get("properties", {}).get(step))
    return schema


def test_every_field_the_models_read_is_in_the_gateways_openapi_document(network: LocalNetwork) -> None:
    with Network(network.gateway_url) as net:
        doc = net.openapi()
    problems = []
    for model, method, path, status, at in ANSWERS:
        if method not in doc["paths"].get(path, {}):
            problems.append(f"{method.upper()} {path}: not in the document")
            continue
        problems += drift(doc, model, _answer_schema(doc, method, path, status, at), f"{method.upper()} {path} {status}")
    assert problems == []


def test_the_check_finds_a_field_the_document_lacks() -> None:
    # The checker itself, on a document that describes a node without `reputation` and with an
    # optional `state`: it must say so (else the test above could never fail).
    node_schema = {"type": "object", "properties": {name: {} for name in ("id", "operator", "models", "state", "live")}, "required": ["id"]}
    doc: dict[str, Any] = {"components": {"schemas": {"Node": node_schema}}}
    problems = drift(doc, Node, {"$ref": "#/components/schemas/Node"}, "node")
    assert "node.reputation: read by Node, absent from the document" in problems
    assert "node.state: required by Node, optional in the document" in problems
    rewards_schema = {"properties": {"epochs": {"type": "array", "items": {"properties": {"epoch": {}}}}}}
    assert "rewards.epochs.status: read by RewardEpoch, absent from the document" in drift(doc, Rewards, rewards_schema, "rewards")


@pytest.mark.parametrize("path", ["/v1/models", "/v1/nodes", "/health", "/v1/network"])
def test_the_models_validate_the_gateways_real_answers(network: LocalNetwork, path: str) -> None:
    body = httpx.get(network.gateway_url + path, timeout=15).json()
    models: dict[str, type[BaseModel]] = {"/v1/models": Model, "/v1/nodes": Node, "/health": Health, "/v1/network": NetworkInfo}
    model = models[path]
    items = body["data"] if "data" in body else [body]
    assert items, f"{path} answered no items to check"
    for item in items:
        model.model_validate(item)
