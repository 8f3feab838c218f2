"""A small JSON Schema validator for tool arguments (no dependency).

It understands the part of JSON Schema that tool parameters use in practice:
``type`` (one or a list), ``properties``, ``required``,
``additionalProperties`` (bool or schema), ``items``, ``enum``, ``const``,
``minimum``/``maximum`` (and the exclusive forms), ``minLength``/
``maxLength``, ``minItems``/``maxItems``, ``pattern``, ``anyOf``/``oneOf``
(as "any of"). Keywords it does not know are ignored, so a richer schema
still validates what it can. :func:`validate` returns one readable line per
problem, each naming its path (``arguments.timezone: expected string``);
an empty list means the value is valid. :func:`check_schema` refuses a
schema that is not a JSON object describing an object.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_schema", "validate"]

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _is(value: Any, name: str) -> bool:
    kinds = _TYPES.get(name)
    if kinds is None:
        return True
    if isinstance(value, bool) and name not in ("boolean",):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, kinds)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "integer", float: "number", dict: "object", list: "array"}.get(
        type(value), "null"
    )


def check_schema(schema: Any) -> str | None:
    """Why `schema` cannot describe a tool's parameters, or None."""
    if not isinstance(schema, dict):
        return "parameters must be a JSON Schema object"
    if schema.get("type", "object") != "object":
        return 'parameters must have "type": "object"'
    if not isinstance(schema.get("properties", {}), dict):
        return "parameters.properties must be an object"
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        return "parameters.required must be a list of strings"
    return None


def validate(value: Any, schema: dict[str, Any], path: str = "arguments") -> list[str]:
    """The problems with `value` against `schema` (empty: valid)."""
    problems: list[str] = []
    _check(value, schema, path, problems)
    return problems


def _check(value: Any, schema: Any, path: str, problems: list[str]) -> None:
    if not isinstance(schema, dict):
        return
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is(value, name) for name in names):
            problems.append(f"{path}: expected {' or '.join(names)}, got {_describe(value)}")
            return
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(repr(choice) for choice in schema["enum"][:10])
        problems.append(f"{path}: must be one of {choices}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {schema['const']!r}")
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if (
            isinstance(options, list)
            and options
            and not any(not validate(value, option, path) for option in options)
        ):
            problems.append(f"{path}: matches none of the allowed forms")
    if isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, path, problems)
    elif isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']} characters")
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and re.search(pattern, value) is None:
            problems.append(f"{path}: does not match {pattern}")
    elif isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{path}: more than {schema['maxItems']} items")
        items = schema.get("items")
        for index, item in enumerate(value):
            _check(item, items, f"{path}[{index}]", problems)
    elif isinstance(value, dict):
        _check_object(value, schema, path, problems)


def _check_number(value: float, schema: dict[str, Any], path: str, problems: list[str]) -> None:
    if "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{path}: must be at least {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        problems.append(f"{path}: must be at most {schema['maximum']}")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        problems.append(f"{path}: must be more than {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        problems.append(f"{path}: must be less than {schema['exclusiveMaximum']}")


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], path: str, problems: list[str]
) -> None:
    properties = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            problems.append(f"{path}.{name}: required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], f"{path}.{name}", problems)
        elif extra is False:
            problems.append(f"{path}.{name}: unknown argument")
        elif isinstance(extra, dict):
            _check(item, extra, f"{path}.{name}", problems)
