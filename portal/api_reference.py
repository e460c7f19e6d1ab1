"""The API reference page, read from the OpenAPI document at request time.

Nothing here describes the API by hand: operations, parameters, request and response
schemas, problem types and scopes all come from `portal.api.openapi_document()`, which is
built from the pydantic models that validate the calls. This module only turns JSON Schema
into rows a template can show (a type label with links to named schemas, constraints as
words).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

REF_PREFIX = "#/components/schemas/"
# A type label: text pieces, each optionally naming the schema it links to.
Label = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Row:
    """A parameter or a schema property."""

    name: str
    where: str
    required: bool
    type: Label
    notes: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Answer:
    status: str
    meaning: str
    body: Label
    media: str


@dataclass(frozen=True)
class OperationView:
    anchor: str
    method: str
    path: str
    summary: str
    scope: str
    parameters: tuple[Row, ...]
    bodies: tuple[tuple[str, Label], ...]
    answers: tuple[Answer, ...]


@dataclass(frozen=True)
class SchemaView:
    name: str
    description: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Reference:
    title: str
    version: str
    authentication: str
    groups: tuple[tuple[str, tuple[OperationView, ...]], ...]
    scopes: tuple[tuple[str, tuple[OperationView, ...]], ...]
    problems: tuple[tuple[str, int, str], ...]
    schemas: tuple[SchemaView, ...]


def type_label(schema: dict[str, Any]) -> Label:
    """How a JSON Schema reads: "string", "array of FamilyRecord", "integer or null"…"""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix(REF_PREFIX)
        return ((name, name),)
    for combinator, joiner in (("anyOf", " or "), ("oneOf", " or "), ("allOf", " and ")):
        if combinator in schema:
            parts: list[tuple[str, str | None]] = []
            for index, branch in enumerate(schema[combinator]):
                if index:
                    parts.append((joiner, None))
                parts.extend(type_label(branch))
            return tuple(parts)
    if "enum" in schema:
        return ("one of " + ", ".join(str(v) for v in schema["enum"]), None),
    if "const" in schema:
        return (f"always {schema['const']}", None),
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return (" or ".join(str(k) for k in kind), None),
    if kind == "array":
        return (("array of ", None), *type_label(schema.get("items", {})))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return (("object of ", None), *type_label(schema["additionalProperties"]))
    if "format" in schema:
        return (f"{kind} ({schema['format']})", None),
    return (str(kind), None),


def constraints(schema: dict[str, Any]) -> tuple[str, ...]:
    """Limits and defaults in words, looking inside `anyOf` branches (pydantic puts an
    optional field's limits there)."""
    notes: list[str] = []
    for branch in [schema, *schema.get("anyOf", [])]:
        low, high = branch.get("minLength"), branch.get("maxLength")
        if low is not None or high is not None:
            if high is None:
                notes.append(f"at least {low} characters")
            else:
                notes.append(f"{low}–{high} characters" if low else f"at most {high} characters")
        if "minimum" in branch or "maximum" in branch:
            notes.append(f"{branch.get('minimum', '…')}–{branch.get('maximum', '…')}")
        if "minItems" in branch or "maxItems" in branch:
            notes.append(f"{branch.get('minItems', 0)}–{branch.get('maxItems', '…')} items")
        if "pattern" in branch:
            notes.append(f"matches {branch['pattern']}")
    if schema.get("default") is not None:
        notes.append(f"default {json.dumps(schema['default'])}")
    return tuple(notes)


def _schema_rows(schema: dict[str, Any]) -> tuple[Row, ...]:
    required = set(schema.get("required", []))
    return tuple(
        Row(name, "body", name in required, type_label(prop), constraints(prop), str(prop.get("description", "")))
        for name, prop in schema.get("properties", {}).items()
    )


def _operation(path: str, method: str, entry: dict[str, Any]) -> OperationView:
    parameters = tuple(
        Row(p["name"], p["in"], bool(p.get("required")), type_label(p.get("schema", {})), constraints(p.get("schema", {})), str(p.get("description", "")))
        for p in entry.get("parameters", [])
    )
    bodies = tuple((media, type_label(content.get("schema", {}))) for media, content in entry.get("requestBody", {}).get("content", {}).items())
    answers = []
    for status, answer in entry.get("responses", {}).items():
        content = answer.get("content", {})
        media, body = next(iter(content.items()), ("", {}))
        answers.append(Answer(status, str(answer.get("description", "")), type_label(body.get("schema", {})) if body else (), media))
    return OperationView(
        anchor=str(entry.get("operationId", f"{method}-{path}")),
        method=method.upper(),
        path=path,
        summary=str(entry.get("summary", "")),
        scope=str(entry.get("x-pawpost-scope", "")),
        parameters=parameters,
        bodies=bodies,
        answers=tuple(answers),
    )


def build_reference(document: dict[str, Any]) -> Reference:
    """The page's content, from the OpenAPI document as served."""
    groups: dict[str, list[OperationView]] = {}
    for path, methods in document.get("paths", {}).items():
        section = path.removeprefix("/api/v1/").split("/", 1)[0].replace("-", " ").capitalize()
        for method, entry in methods.items():
            groups.setdefault(section, []).append(_operation(path, method, entry))
    operations = [op for ops in groups.values() for op in ops]
    scopes: dict[str, list[OperationView]] = {}
    for op in operations:
        scopes.setdefault(op.scope, []).append(op)
    components = document.get("components", {})
    schemes = components.get("securitySchemes", {})
    schemas = tuple(
        SchemaView(name, str(schema.get("description", "")), _schema_rows(schema))
        for name, schema in sorted(components.get("schemas", {}).items())
    )
    problems = tuple((kind, int(value["status"]), str(value["when"])) for kind, value in document.get("x-problem-types", {}).items())
    return Reference(
        title=str(document.get("info", {}).get("title", "API")),
        version=str(document.get("info", {}).get("version", "")),
        authentication=" ".join(str(s.get("description", "")) for s in schemes.values()),
        groups=tuple((name, tuple(ops)) for name, ops in groups.items()),
        scopes=tuple((scope, tuple(ops)) for scope, ops in sorted(scopes.items())),
        problems=tuple(sorted(problems, key=lambda p: (p[1], p[0]))),
        schemas=schemas,
    )
