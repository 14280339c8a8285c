"""Modalities: what a field's values are on the wire, registered by plugins.

A modality names a kind of input value (``text``, ``image``, an EHR record ...) and says how
it travels in a request: a JSON ``value`` or ``object`` or ``list`` checked against a Python
type (a pydantic model, ``dict[str, float]``, ``list[str | int]`` ...), or a ``binary`` file
upload with the media types it accepts. Serving, request validation, OpenAPI, the playground
and export read this registry; the core names no plugin's modality.

``null`` is always accepted: a missing value is part of every modality (the presence mask).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from polymodal.errors import PluginError

Wire = Literal["value", "object", "list", "binary"]
WIRES: tuple[str, ...] = ("value", "object", "list", "binary")
BINARY_SCHEMA: dict[str, Any] = {"type": "object", "required": ["base64"],
                                 "properties": {"base64": {"type": "string",
                                                           "format": "byte"}}}


@dataclass
class ValueProblem(Exception):
    """A value a modality refuses: ``path`` is where inside the value (may be empty)."""

    message: str
    path: str = ""


@dataclass
class Modality:
    """One registered modality (see ``register_modalities`` in docs/hooks.md)."""

    name: str
    wire: str
    plugin: str
    value_type: Any = None  # a type, or "module:attr" naming one; None: any JSON value
    media_types: tuple[str, ...] = ()
    samples: tuple[Any, ...] | None = None
    description: str = ""
    expects: str = ""
    schema_override: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.wire not in WIRES:
            raise PluginError(f"modality {self.name!r} from plugin {self.plugin!r}: wire "
                              f"must be one of {', '.join(WIRES)}, not {self.wire!r}")
        if self.wire == "binary" and not self.media_types:
            raise PluginError(f"modality {self.name!r} from plugin {self.plugin!r}: a binary "
                              "modality names the media types it accepts")
        if self.samples is not None and len(self.samples) < 2:
            raise PluginError(f"modality {self.name!r} from plugin {self.plugin!r}: give two "
                              "sample values (export traces on one and checks on both)")

    @property
    def binary(self) -> bool:
        return self.wire == "binary"

    @cached_property
    def _adapter(self) -> Any:
        from pydantic import TypeAdapter

        value_type = self.value_type
        if isinstance(value_type, str):
            module_name, _, attr = value_type.partition(":")
            try:
                value_type = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise PluginError(f"modality {self.name!r}: value type {self.value_type!r} "
                                  f"cannot be loaded: {exc}") from exc
        return None if value_type is None else TypeAdapter(value_type)

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of one value in a JSON request (null allowed)."""
        if self.schema_override is not None:
            base = dict(self.schema_override)
        elif self.binary:
            base = dict(BINARY_SCHEMA)
        elif self._adapter is None:
            base = {}
        else:
            base = _inline_definitions(self._adapter.json_schema())
        described = base if self.binary or not base else _nullable(base)
        if self.description:
            described["description"] = self.description
        return described

    def check(self, value: Any, *, from_form: bool = False) -> Any:
        """The value as the model takes it, or ValueProblem. Binary values arrive as bytes
        (decoded from base64 or read from an upload) and are returned unchanged."""
        if value is None:
            return None
        if self.binary:
            if isinstance(value, bytes):
                return value
            raise ValueProblem(f"{self.name} inputs are files: upload it (multipart) or "
                               'send {"base64": "..."}')
        if isinstance(value, bytes):
            raise ValueProblem(f"{self.name} inputs take a value, not a file")
        if from_form and self.wire in ("object", "list") and isinstance(value, str):
            import json

            try:
                value = json.loads(value) if value.strip() else None
            except ValueError:
                raise ValueProblem(f"a {self.name} form field holds JSON; this is not valid "
                                   "JSON") from None
            if value is None:
                return None
        _check_finite(value, "")
        if self._adapter is None:
            return value
        from pydantic import ValidationError

        try:
            checked = self._adapter.validate_python(value, strict=not from_form)
        except ValidationError as exc:
            if from_form and isinstance(value, str) and not value.strip():
                return None  # an empty form field of a number: a missing value
            raise self._problem(exc) from None
        return self._adapter.dump_python(checked, mode="json")

    def _problem(self, exc: Any) -> ValueProblem:
        errors = exc.errors(include_url=False)
        loc = list(errors[0]["loc"])
        # A union reports one error per member, each under the member's name as the last
        # part of its location: report the place of the union, with what it expects.
        siblings = [e for e in errors if list(e["loc"][:-1]) == loc[:-1]]
        if len(siblings) > 1 and len({e["loc"][-1] for e in siblings}) > 1:
            loc = loc[:-1]
            message = " or ".join(dict.fromkeys(e["msg"] for e in siblings))
        else:
            message = errors[0]["msg"]
        if not loc:
            return ValueProblem(f"expected {self.expects or self._expected()}")
        path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        return ValueProblem(message, path.lstrip("."))

    def _expected(self) -> str:
        schema = self.schema()
        kinds: list[str] = []
        for member in schema.get("anyOf", [schema]):
            kind = member.get("type")
            kinds += kind if isinstance(kind, list) else [kind] if kind else []
        return " or ".join(kinds) or f"a {self.name} value"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "modality", "name": self.name, "plugin": self.plugin,
                               "description": self.description, "wire": self.wire}
        if self.media_types:
            out["media_types"] = list(self.media_types)
        return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with null allowed: ``{"type": ["number", "null"]}`` for plain types (one,
    or a union of them), ``anyOf`` with null otherwise."""
    members = schema.get("anyOf", [schema]) if set(schema) <= {"anyOf", "type"} else [schema]
    if all(set(m) == {"type"} and isinstance(m["type"], str) for m in members):
        return {"type": [*(m["type"] for m in members), "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its ``$defs`` written in place: it is embedded inside another document
    (an OpenAPI operation), where ``#/$defs/...`` would point at that document's root. A
    self-referencing model is described as an object at its second appearance."""
    definitions = schema.pop("$defs", {})

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref[len("#/$defs/"):] if ref.startswith("#/$defs/") else ""
            if name in seen:
                return {"type": "object", "description": f"a nested {name}"}
            if name in definitions:
                return inline(definitions[name], (*seen, name))
            return {key: inline(value, seen) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item, seen) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema, ())
    return inlined


def _check_finite(value: Any, path: str) -> None:
    """NaN and Infinity are not JSON numbers; they are refused wherever they sit."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem(f"{value} is not a finite number", path)
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{path}[{index}]" if path else f"[{index}]")


ANY_JSON = Modality("any", "value", "core", description="a modality no plugin registered")


def modality_named(name: str) -> Modality:
    """The registered modality; a name no loaded plugin registers takes any JSON value."""
    from polymodal.errors import UnknownNameError
    from polymodal.registry import get_registry

    try:
        return get_registry().modality(name)
    except UnknownNameError:
        return ANY_JSON
