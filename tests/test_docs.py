"""The documentation a user reads stays true to the code."""

from __future__ import annotations

import typing
from pathlib import Path

import attrs
import orjson

from aleph.config import Config

ROOT = Path(__file__).resolve().parent.parent


def _doc_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


def test_every_config_key_is_documented_with_its_default() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    config = Config()
    missing = []
    for section, cls in typing.get_type_hints(Config).items():
        if not attrs.has(cls):
            continue
        heading = f"## [{section}]"
        assert heading in text, f"docs/configuration.md has no {heading} section"
        body = text.split(heading, 1)[1].split("\n## ", 1)[0]
        for field in attrs.fields(cls):
            default = _doc_value(getattr(getattr(config, section), field.name))
            if f"| `{field.name}` | `{default}` |" not in body:
                missing.append(f"{section}.{field.name} = {default}")
    assert not missing, "undocumented or wrong defaults: " + ", ".join(missing)


def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```sh\n")[1:3]
    assert "aleph serve" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pytest" in ci
