"""Command lines built from settings dataclasses: each field is written once, with its help in the field.

A field declared with `option(default, "help", ...)` becomes `--field-name`. Its type comes from the annotation:
`bool` takes `--x/--no-x`, `list[str]` / `list[int]` one or more values, `tuple[int, ...]` / `tuple[str, ...]` a comma list,
`int`/`float`/`str` (optionally `| None`) one value. Options left out keep the dataclass default, so a settings
file (or a caller) can supply them instead.

Plain stdlib, as the settings modules that use it: `--help` needs no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, Sequence

_MISSING = dataclasses.MISSING


def option(default: Any = _MISSING, help: str = "", *, group: str | None = None, choices: Sequence | None = None,
           metavar: str | None = None, factory: Any = _MISSING) -> Any:
    """A dataclass field that is also a command-line option; no default makes the option required."""
    meta = {"help": help, "group": group, "choices": tuple(choices) if choices else None, "metavar": metavar}
    if factory is not _MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(hint: Any) -> Any:
    """`X | None` -> X."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _comma_list(item: type):
    def parse(text: str) -> tuple:
        try:
            return tuple(item(x) for x in text.replace(" ", "").split(",") if x)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {item.__name__}, got {text!r}") from exc

    parse.__name__ = f"{item.__name__} list"
    return parse


def _default_text(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not _MISSING else f.default


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One option per field of `cls`, in field order, under each field's group."""
    hints = typing.get_type_hints(cls)
    groups: dict[str | None, Any] = {None: parser}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with train.options.option()")
        group = meta["group"]
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        kind = _base_type(hints[f.name])
        required = f.default is _MISSING and f.default_factory is _MISSING
        kwargs: dict[str, Any] = {"default": None, "help": meta["help"], "required": required}
        if meta["choices"]:
            kwargs["choices"] = meta["choices"]
        if meta["metavar"]:
            kwargs["metavar"] = meta["metavar"]
        if not required and _default(f) not in (None, "", (), []):
            kwargs["help"] += f" (default: {_default_text(_default(f))})"
        origin = typing.get_origin(kind)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif origin is list:
            kwargs["nargs"] = "+"
            kwargs["type"] = typing.get_args(kind)[0]
        elif origin is tuple:
            kwargs["type"] = _comma_list(typing.get_args(kind)[0])
        elif kind in (int, float, str):
            kwargs["type"] = kind
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line form for {kind!r}")
        groups[group].add_argument(flag(f.name), **kwargs)


def given(namespace: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` that the command line set."""
    values = vars(namespace)
    return {f.name: values[f.name] for f in dataclasses.fields(cls) if values.get(f.name) is not None}
