"""The reference table of settings variables, generated from the settings classes.

Each row is one variable: its name, what it accepts (the same words its error uses), its default
(a secret's shows as unset), which component reads it and the field's docstring. The library
cannot import the components, so the caller names the classes and their readers:
``tools/settings_reference.py`` renders ``docs/settings.md`` for the whole product.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic.fields import FieldInfo

from shared.settings.env import EnvSettings, EnvValue, is_secret

HEADER = """\
# Settings reference

<!-- Generated from the settings classes; do not edit by hand. Regenerate with
     python -m tools.settings_reference --write -->

Every variable the services read, with what it accepts and its default. An unset, empty or blank
variable keeps its default. A bad value stops the service at startup with one line naming the
variable, what it expected and what it got (secret values are never shown), e.g.
`STELLAR_CARBON_WEBHOOK_PORT: expected a port 1-65535, got '70000'`.
"""


def render(readers: Sequence[tuple[type[EnvSettings], str]]) -> str:
    """Markdown for every variable of each ``(settings class, who reads it)``."""
    sections = [HEADER]
    for settings, reader in readers:
        sections.append(f"\n## `{settings.env_prefix}*` ({reader})\n\n")
        sections.append("| Variable | Accepts | Default | Read by | Description |\n")
        sections.append("| --- | --- | --- | --- | --- |\n")
        sections.extend(_rows(settings, reader))
    return "".join(sections)


def _rows(settings: type[EnvSettings], reader: str) -> Iterable[str]:
    by_variable: dict[str, list[tuple[str, FieldInfo]]] = {}
    for name, info in settings.model_fields.items():
        if info.default_factory is not None:
            continue  # nested settings: their own section lists them
        by_variable.setdefault(settings.variable(name), []).append((name, info))
    for variable, named in by_variable.items():
        _, first = named[0]
        description = " ".join(_one_line(info.description or "") for _, info in named)
        cells = (f"`{variable}`", _accepts(first), _default(first), reader, description)
        yield "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |\n"


def _accepts(info: FieldInfo) -> str:
    value_type = next((item for item in info.metadata if isinstance(item, EnvValue)), None)
    return value_type.accepts if value_type is not None else "text"


def _default(info: FieldInfo) -> str:
    value = info.default
    if is_secret(info) or value is None:
        return "unset"
    value_type = next((item for item in info.metadata if isinstance(item, EnvValue)), None)
    if value_type is not None and value_type.show is not None:
        value = str(value_type.show(value))
    elif isinstance(value, enum.Enum):
        value = value.value
    elif isinstance(value, tuple):
        value = ",".join(value) if value else ""
    elif isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float | Path):
        value = f"{value:g}" if isinstance(value, float) else str(value)
    return f"`{value}`" if value != "" else "empty"


def _one_line(text: str) -> str:
    return " ".join(text.split())
