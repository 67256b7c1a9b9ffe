"""Settings read from prefixed environment variables: the base every component's settings share.

A settings class is a frozen pydantic model whose fields carry a docstring each. ``from_env``
reads ``<prefix><FIELD>`` for every field (unset, empty or blank variables keep the default),
parses each text with the field's ``EnvValue`` and checks the rules between fields; any failure
is one ``ConfigError`` in one format, ``VARIABLE: problem`` where the problem says what was
expected and what was given (``expected a port 1-65535, got '70000'``) or what is accepted.
Values of secret fields are never quoted.

Why pydantic without pydantic-settings: what a variable means here is small and fixed (a prefix,
an upper-case field name, blank means unset), and ``from_env`` takes a plain mapping so tests and
the reference table need no process environment. A page of our own over ``BaseModel`` does that;
pydantic-settings would add sources, nesting delimiters and dotenv files we would have to switch
off, and one more dependency.

Rules apply to what comes from the environment. Settings built in code (tests, benchmarks, the
preview tool) are trusted values, as they were when these were dataclasses: only their types are
checked.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, ValidationError, ValidationInfo
from pydantic.fields import FieldInfo
from pydantic_core import core_schema

from shared.core.errors import ConfigError
from shared.core.secret import Secret

_M = TypeVar("_M")

_FROM_ENV: Mapping[str, bool] = {"from_env": True}
"""Validation context marking values that came from the environment, so rules apply."""


def from_environment(info: ValidationInfo) -> bool:
    """Whether a validator is looking at values read by ``from_env``."""
    return isinstance(info.context, Mapping) and bool(info.context.get("from_env"))


class Rejected(ValueError):
    """A value, or a combination of values, that a rule refuses.

    ``problem`` is the message after ``VARIABLE:``; ``field`` names the field to blame when the
    rule spans several (a model validator has no field of its own).
    """

    def __init__(self, problem: str, *, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field


@dataclass(frozen=True, slots=True)
class EnvValue:
    """How one variable's text becomes a field's value; ``Annotated`` metadata on the field.

    ``accepts`` says in words what the variable takes; it completes ``expected …, got …`` and
    fills the reference table. ``parse`` raises ``ValueError`` (that generic message) or
    ``Rejected`` (a message of its own).
    """

    accepts: str
    parse: Callable[[str], Any]
    secret: bool = False
    show: Callable[[Any], object] | None = None
    """How ``describe()`` shows the value, when plain values are not enough (a redacted URL)."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_before_validator_function(self._validate, handler(source))

    def _validate(self, value: object, info: ValidationInfo) -> object:
        if not (isinstance(value, str) and from_environment(info)):
            return value
        try:
            return self.parse(value)
        except Rejected:
            raise
        except ValueError:
            raise Rejected(self.expected(value)) from None

    def expected(self, value: str) -> str:
        """The generic problem: what was expected, and what was given unless it is a secret."""
        return (
            f"expected {self.accepts}" if self.secret else f"expected {self.accepts}, got {value!r}"
        )


@dataclass(frozen=True, slots=True)
class Variable:
    """``Annotated`` metadata naming a field's variable when it is not the field's name."""

    name: str


class EnvSettings(BaseModel):
    """Base of every settings class: frozen, typed, read from ``<env_prefix><FIELD>``."""

    model_config = ConfigDict(
        frozen=True, arbitrary_types_allowed=True, use_attribute_docstrings=True, extra="forbid"
    )

    env_prefix: ClassVar[str]
    """``STELLAR_CARBON_`` or a component's own, e.g. ``STELLAR_CARBON_WEBHOOK_``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Parse the prefixed variables of ``env``; unset or blank ones keep their defaults."""
        raw = cls.read_env(env)
        try:
            return cls.model_validate(raw, context=_FROM_ENV)
        except ValidationError as e:
            message = cls._message(e)
        # Raised outside the handler so the pydantic error, which quotes every input (secrets
        # included), is neither the cause nor the context.
        raise ConfigError(message)

    @classmethod
    def read_env(cls, env: Mapping[str, str]) -> dict[str, object]:
        """The raw text of every set variable, by field; nested settings parsed whole."""
        raw: dict[str, object] = {}
        for name, info in cls.model_fields.items():
            nested = _nested_settings(info)
            if nested is not None:
                raw[name] = nested.from_env(env)
                continue
            value = env.get(cls.variable(name), "").strip()
            if value:
                raw[name] = value
        return raw

    @classmethod
    def variable(cls, field: str) -> str:
        """The full environment variable of ``field``."""
        named = _metadata(cls.model_fields[field], Variable)
        return cls.env_prefix + (named.name if named else field.upper())

    @classmethod
    def _message(cls, error: ValidationError) -> str:
        # One message, about the first failure: the one a reader fixes first.
        first = error.errors(include_url=False)[0]
        cause = (first.get("ctx") or {}).get("error")
        loc = first["loc"]
        field = str(loc[0]) if loc else None
        if isinstance(cause, Rejected):
            field = cause.field or field
            problem = cause.problem
        else:
            problem = first["msg"]
            if field is not None:
                value_type = _metadata(cls.model_fields[field], EnvValue)
                if value_type is not None and isinstance(first["input"], str):
                    problem = value_type.expected(first["input"])
        if field is None or field not in cls.model_fields:
            return f"{cls.env_prefix}*: {problem}"
        return f"{cls.variable(field)}: {problem}"

    def describe(self) -> dict[str, Any]:
        """Plain values for the one startup log line; secrets only as ``set``/``unset``."""
        described: dict[str, Any] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            value_type = _metadata(info, EnvValue)
            if value_type is not None and value_type.show is not None:
                described[name] = value_type.show(value)
            elif isinstance(value, EnvSettings):
                described[name] = value.describe()
            else:
                described[name] = plain(value)
        return described


def plain(value: object) -> object:
    """A settings value as JSON-ready data; a secret as ``set``/``unset`` only."""
    if isinstance(value, Secret):
        return "set" if value else "unset"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def is_secret(info: FieldInfo) -> bool:
    value_type = _metadata(info, EnvValue)
    return value_type is not None and value_type.secret


def _nested_settings(info: FieldInfo) -> type[EnvSettings] | None:
    kind = info.annotation
    return kind if isinstance(kind, type) and issubclass(kind, EnvSettings) else None


def _metadata(info: FieldInfo, kind: type[_M]) -> _M | None:
    return next((item for item in info.metadata if isinstance(item, kind)), None)
