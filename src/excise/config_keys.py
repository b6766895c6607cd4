"""``excise config [CONFIG] [dotted.key=value ...]``: every config key with its type, default
and description, read from the typed config itself (:mod:`excise.config`).

Without a recipe it lists the defaults; with one (and overrides) it shows each key's
resolved value and marks (``*``) the keys whose value differs from the default.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from excise.config import Config, load_config


@dataclass(frozen=True)
class Key:
    """One leaf key of the config."""

    path: str
    type: str
    default: Any
    description: str


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is list:
        (inner,) = typing.get_args(annotation) or (Any,)
        return f"list[{_type_name(inner)}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _section_class(annotation: Any) -> type[BaseModel] | None:
    """The config section class behind an annotation (``DataSource | None`` included)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def config_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[Key]:
    """Every leaf key below ``model`` in declaration order (sections recursed into)."""
    keys = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        section = _section_class(field.annotation)
        if section is not None:
            if field.get_default() is None:  # an optional section: itself a key (null = off)
                keys.append(Key(path, f"{section.__name__} | null", None, field.description or ""))
            keys += config_keys(section, path + ".")
            continue
        default = field.get_default(call_default_factory=True)
        keys.append(Key(path, _type_name(field.annotation), default, field.description or ""))
    return keys


_UNSET = object()


def _value(config: Config, path: str) -> Any:
    """The value at ``path``; ``_UNSET`` below an optional section that is not given."""
    node: Any = config
    for part in path.split("."):
        if node is None:
            return _UNSET
        node = getattr(node, part)
    return node


def format_keys(config: Config | None = None) -> str:
    """The listing: ``key  type  value  description``, one key a line, by section."""
    defaults = Config()
    rows = []
    for key in config_keys():
        default = _value(defaults, key.path)
        default = key.default if default is _UNSET else default
        value = default if config is None else _value(config, key.path)
        changed = value is not _UNSET and value != default
        value = default if value is _UNSET else value
        shown = json.dumps(value, default=str)
        rows.append(("*" if changed else " ", key.path, key.type, shown, key.description))
    widths = [min(max(len(r[i]) for r in rows), cap) for i, cap in ((1, 34), (2, 26), (3, 12))]
    lines, section = [], None
    for mark, path, type_, value, description in rows:
        head = path.split(".")[0] if "." in path else ""
        if head != section:
            section = head
            lines.append(f"\n{head or 'run'}:")
        lines.append(
            f" {mark}{path.ljust(widths[0])}  {type_.ljust(widths[1])}  {value.ljust(widths[2])}  {description}".rstrip()
        )
    return "\n".join(lines).lstrip("\n")


def cli_config(args) -> int:
    recipe = getattr(args, "config", None)
    overrides = list(getattr(args, "overrides", None) or [])
    if recipe is not None and "=" in recipe:  # only overrides were given
        recipe, overrides = None, [recipe, *overrides]
    config = load_config(recipe, overrides) if recipe or overrides else None
    header = (
        f"{recipe or 'defaults'}{' + ' + ' '.join(overrides) if overrides else ''}: resolved values, "
        "* = not the default"
        if config is not None
        else "every config key with its default"
    )
    print(header + "; set any key as dotted.key=value\n")
    print(format_keys(config))
    return 0
