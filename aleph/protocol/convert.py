"""Strict structuring of untrusted data (request params, config) with cattrs.

The stock cattrs converter is lenient: it turns ``"2140"`` into ``2140`` and
``1`` into ``True``. Data from a client or a config file must say what it
means, so the converter built here accepts a value only when its JSON type
already matches: an int for ``int`` (never a bool), an int or a float for
``float``, a string for ``str``, ``true``/``false`` for ``bool``. Unknown keys
are refused (``forbid_extra_keys``).

:func:`error_lines` turns a structuring failure into one readable line per
problem, each starting with its key path: ``gateway.port: expected int, got
str "abc"``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

import cattrs
from cattrs.errors import ForbiddenExtraKeysError
from cattrs.v import transform_error

__all__ = ["StrictTypeError", "describe_value", "error_lines", "make_converter"]

T = TypeVar("T")


class StrictTypeError(TypeError):
    """A value of the wrong JSON type; its message is shown as it is."""


def describe_value(value: Any) -> str:
    """A short, safe description of a value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'str "{shown}"'
    if isinstance(value, int | float):
        return f"{type(value).__name__} {value}"
    return {"dict": "object", "list": "array"}.get(type(value).__name__, type(value).__name__)


def _strict(kind: type, accepts: tuple[type, ...]) -> Callable[[Any, type], Any]:
    name = kind.__name__

    def structure(value: Any, _type: type) -> Any:
        if isinstance(value, bool) and bool not in accepts:
            raise StrictTypeError(f"expected {name}, got {describe_value(value)}")
        if not isinstance(value, accepts):
            raise StrictTypeError(f"expected {name}, got {describe_value(value)}")
        return kind(value)

    return structure


def make_converter() -> cattrs.Converter:
    """A converter with strict scalars and `forbid_extra_keys`."""
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(int, _strict(int, (int,)))
    converter.register_structure_hook(float, _strict(float, (int, float)))
    converter.register_structure_hook(str, _strict(str, (str,)))
    converter.register_structure_hook(bool, _strict(bool, (bool,)))
    return converter


def _format_exception(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, StrictTypeError):
        return str(exc)
    if isinstance(exc, ForbiddenExtraKeysError):
        return "unknown key(s): " + ", ".join(sorted(exc.extra_fields))
    if isinstance(exc, KeyError):
        return "required key missing"
    if type_ is not None and typing.get_origin(type_) is typing.Literal:
        choices = ", ".join(repr(choice) for choice in typing.get_args(type_))
        return f"expected one of {choices}"
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)
    name = getattr(type_, "__name__", None) or str(type_)
    return f"invalid value, expected {name}"


def error_lines(exc: Exception, prefix: str = "") -> list[str]:
    """One line per problem, ``path.to.key: what is wrong``."""
    if not isinstance(exc, cattrs.BaseValidationError):
        return [f"{prefix or 'value'}: {exc}"]
    lines = []
    for line in transform_error(exc, path="$", format_exception=_format_exception):
        message, _, path = line.rpartition(" @ ")
        path = path.removeprefix("$").removeprefix(".")
        full = ".".join(part for part in (prefix, path) if part)
        lines.append(f"{full or 'value'}: {message}")
    return lines
