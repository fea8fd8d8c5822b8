"""A checker of JSON values against the API's OpenAPI schemas (`jsonschema` is not a dependency):
exactly the JSON Schema subset the document uses, and a refusal of any keyword outside it, so a
schema cannot grow a rule this checker would silently skip."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

KEYWORDS = frozenset(
    {
        "$ref",
        "oneOf",
        "type",
        "enum",
        "const",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "description",
        "format",
    }
)
_CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def _is(kind: str, value: Any) -> bool:
    match kind:
        case "null":
            return value is None
        case "boolean":
            return isinstance(value, bool)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        case "string":
            return isinstance(value, str)
        case "array":
            return isinstance(value, list)
        case "object":
            return isinstance(value, dict)
    raise ValueError(f"unknown type {kind!r}")


def resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def problems(value: Any, schema: dict[str, Any], components: dict[str, Any], at: str = "$") -> list[str]:
    """What is wrong with `value` by `schema` (empty: valid), each with where."""
    schema = resolve(schema, components)
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise ValueError(f"{at}: the checker does not know {sorted(unknown)}")
    if "oneOf" in schema:
        each = [problems(value, s, components, at) for s in schema["oneOf"]]
        matching = sum(not found for found in each)
        if matching == 0:  # what the nearest branch says
            return [f"{at}: matches no branch of oneOf", *min(each, key=len)]
        if matching > 1:
            return [f"{at}: matches {matching} branches of oneOf, not exactly one"]
    found: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(k, value) for k in kinds):
            return [f"{at}: {type(value).__name__} is not {kinds}"]
    if "const" in schema and value != schema["const"]:
        found.append(f"{at}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{at}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{at}: {value!r} does not match {schema['pattern']}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            found.append(f"{at}: length {len(value)} is out of bounds")
    if _is("number", value) and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        found.append(f"{at}: {value} is out of bounds")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{at}: {name} is missing" for name in schema.get("required", []) if name not in value]
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                found += problems(item, properties[name], components, f"{at}.{name}")
            elif extra is False:
                found.append(f"{at}: {name} is not a field of this object")
            elif isinstance(extra, dict):
                found += problems(item, extra, components, f"{at}.{name}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            found.append(f"{at}: {len(value)} items is out of bounds")
        prefix = schema.get("prefixItems", [])
        for i, item in enumerate(value):
            rule = prefix[i] if i < len(prefix) else schema.get("items")
            if rule is not None:
                found += problems(item, rule, components, f"{at}[{i}]")
    return found


def check(value: Any, name: str, document: dict[str, Any]) -> None:
    """Asserts `value` is valid by the document's component schema `name`."""
    components = document["components"]["schemas"]
    found = problems(value, components[name], components)
    assert not found, "\n".join(found)


def response_schema(document: dict[str, Any], method: str, template: str, status: int) -> dict[str, Any] | None:
    """The JSON schema of an operation's answer with `status`, if it documents one."""
    response = document["paths"][template][method.lower()]["responses"].get(str(status), {})
    return response.get("content", {}).get("application/json", {}).get("schema")


def template_of(document: dict[str, Any], path: str) -> str:
    """The documented path template a concrete path (query or not) is an instance of."""
    bare = path.split("?", 1)[0]
    found = [t for t in document["paths"] if re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(t)), bare)]
    # as OpenAPI says: a concrete path matches before a templated one (/v1/review/eip712, /v1/review/{digest})
    fewest = min((t.count("{") for t in found), default=0)
    found = [t for t in found if t.count("{") == fewest]
    assert len(found) == 1, (path, found)
    return found[0]


def check_answer(document: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """Asserts a JSON answer is valid by the schema its operation documents for `status`."""
    template = template_of(document, path)
    schema = response_schema(document, method, template, status)
    assert schema is not None, f"{method} {template} documents no JSON answer with status {status}"
    found = problems(body, schema, document["components"]["schemas"])
    assert not found, f"{method} {path} {status}:\n" + "\n".join(found)


def keys(value: Any, at: str = "$") -> Iterator[tuple[str, str]]:
    """Every object key in `value`, at every depth, with where."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield at, name
            yield from keys(item, f"{at}.{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from keys(item, f"{at}[{i}]")


def not_camel_case(value: Any) -> list[str]:
    """The keys of `value`, at any depth, that are not camelCase."""
    return [f"{at}.{name}" for at, name in keys(value) if not _CAMEL.match(name)]
