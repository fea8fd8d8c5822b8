"""Requests generated from the API's own OpenAPI document: every operation, its path, query and
header parameters and its JSON body drawn from their schemas, half the time valid by the
schema and half the time hostile (any text, huge, traversal, control characters, wrong types),
so both the happy paths and the error paths are exercised."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

HOSTILE_TEXT = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "",
            "../../etc/passwd",
            "..%2F..%2Fetc%2Fpasswd",
            "%00",
            "0x",
            "0x" + "f" * 64,
            "-1",
            "1e309",
            "NaN",
            "9" * 90,
            "<script>alert(1)</script>",
            "' OR 1=1 --",
            "A" * 5_000,
            "\u202e\u0000\ufeff",
        ]
    ),
)


def from_schema(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid by a (small) JSON schema: the subset the document uses."""
    if "$ref" in schema:
        return from_schema(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "oneOf" in schema:
        return st.one_of([from_schema(s, components) for s in schema["oneOf"]])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 64), 256))
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2**64)), schema.get("maximum", 2**64))
    if kind == "number":
        return st.floats(schema.get("minimum", -1e9), schema.get("maximum", 1e9), allow_nan=False)
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, components) for k, v in props.items() if k in required},
            optional={k: from_schema(v, components) for k, v in props.items() if k not in required},
        )
    return st.none()


ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in sorted(document["paths"].items())
        for method, operation in sorted(item.items())
    ]


@st.composite
def calls(draw: st.DrawFn, document: dict[str, Any], method: str, template: str, operation: dict[str, Any]) -> Call:
    components = document.get("components", {}).get("schemas", {})
    path, query, headers = template, {}, {}
    for param in operation.get("parameters", []):
        valid = draw(st.booleans())
        value = draw(from_schema(param["schema"], components) if valid else HOSTILE_TEXT)
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", urllib.parse.quote(str(value), safe=""))
        elif param["in"] == "query" and draw(st.booleans()):
            query[param["name"]] = str(value)
        elif param["in"] == "header" and draw(st.booleans()):
            text = str(value)
            if text.isascii() and text.isprintable():
                headers[param["name"]] = text
    body = None
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        choice = draw(st.integers(0, 3))
        if choice == 0:
            body = json.dumps(draw(from_schema(content["application/json"]["schema"], components))).encode()
        elif choice == 1:
            body = json.dumps(draw(ANY_JSON)).encode()
        else:
            body = draw(st.binary(max_size=2_000)) if choice == 2 else b"x" * 70_000
        headers["Content-Type"] = draw(st.sampled_from(["application/json", "text/plain", "application/json"]))
    if query:
        path += "?" + urllib.parse.urlencode(query)
    return Call(method, path, headers, body)
