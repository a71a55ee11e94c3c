"""The extractor's command-line flags, generated from its settings (:mod:`ptoie.extract.config`).

Each field of :class:`~ptoie.extract.config.ModelConfig` and
:class:`~ptoie.extract.config.DecodingConfig` is one flag of ``ptoie extract``, ``ptoie-eval`` and
``ptoie-batch``: ``--field-name`` (or the field's ``flag`` metadata: ``--model``, ``--lora``,
``--threads``), the field's type, its choices (a Literal; ``none`` stands for None), its default,
and as help the first paragraph of the field's docstring. The flags are grouped by the field's
``group`` metadata; a command may change a default with ``parser.set_defaults``.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import textwrap
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from ptoie.extract.config import (CONFIGS, RUNTIME, ConfigError, configs_from_settings,
                                  union_members)

def add_extractor_arguments(parser: argparse.ArgumentParser, *, runtime: bool = True) -> None:
    """A flag for each field of the extractor's configs; ``runtime=False`` leaves out the
    :data:`~ptoie.extract.config.RUNTIME` group (``ptoie-batch`` sets threads and GPU layers per
    worker)."""
    groups: dict[str, Any] = {}
    for config in CONFIGS:
        docs = field_docs(config)
        hints = typing.get_type_hints(config)
        for f in dataclasses.fields(config):
            group = f.metadata["group"]
            if group == RUNTIME and not runtime:
                continue
            if group not in groups:
                groups[group] = parser.add_argument_group(group)  # titled by the group's name
            _add_flag(groups[group], f, hints[f.name], flag_help(docs.get(f.name, "")))


def extractor_configs(args: argparse.Namespace) -> dict[str, Any]:
    """``{"model": ModelConfig, "decoding": DecodingConfig}`` from the parsed flags (a field
    without a flag on this command keeps its default): the keyword arguments of
    :class:`ptoie.Extractor`. A bad value raises :class:`~ptoie.extract.config.ConfigError`
    naming the flag."""
    values = vars(args)
    settings = {name: values[name] for name in _fields() if name in values}
    try:
        model, decoding = configs_from_settings(settings)
    except ConfigError as exc:
        raise exc.worded(flag_of) from None
    return {"model": model, "decoding": decoding}


def other_options(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags that are not the extractor's."""
    return {name: value for name, value in vars(args).items() if name not in _fields()}


def flag_of(name: str) -> str:
    """The flag of the config field ``name``."""
    f = _fields()[name]
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@cache
def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for config in CONFIGS for f in dataclasses.fields(config)}


def _add_flag(group: Any, f: dataclasses.Field[Any], hint: Any, help_text: str) -> None:
    shortcut = f.metadata.get("shortcut")
    target = group.add_mutually_exclusive_group() if shortcut else group
    options, default_text = _flag_options(f, hint)
    if default_text is not None:
        help_text = f"{help_text.rstrip('.')} (default: {default_text})"
    flag = flag_of(f.name)
    options.setdefault("metavar", flag.lstrip("-").replace("-", "_").upper())
    target.add_argument(flag, dest=f.name, help=help_text, **options)
    if shortcut:
        short, value, shortcut_help = shortcut
        target.add_argument(short, action="store_const", const=value, dest=f.name, help=shortcut_help)


def _flag_options(f: dataclasses.Field[Any], hint: Any) -> tuple[dict[str, Any], str | None]:
    """argparse options of the field's flag, and its default as ``--help`` shows it (None: not
    shown, the help says what omitting the flag means)."""
    members = union_members(hint)
    optional = type(None) in members
    kinds = [m for m in members if m is not type(None)]
    if kinds == [bool]:
        return ({"action": argparse.BooleanOptionalAction, "default": f.default, "metavar": None},
                "on" if f.default else "off")
    literal = next((m for m in kinds if typing.get_origin(m) is Literal), None)
    if literal is not None:
        choices = [*typing.get_args(literal), *(["none"] if optional else [])]
        return ({"type": _choice(choices), "metavar": "{" + ",".join(choices) + "}",
                 "default": f.default}, "none" if f.default is None else str(f.default))
    kind = next((k for k in (int, float) if k in kinds), str)
    options = {"type": kind, "default": f.default}
    if kind is not str:
        options["metavar"] = "N" if kind is int else "X"
    return options, None if f.default is None else "%(default)s"


def _choice(choices: list[str]) -> Callable[[str], str | None]:
    def choose(value: str) -> str | None:
        if value not in choices:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return None if value == "none" else value

    return choose


# -- help from the field docstrings ---------------------------------------------------------------
def field_docs(config: type) -> dict[str, str]:
    """The docstring under each field of the dataclass ``config`` (read from its source; none
    where the source is not installed)."""
    try:
        source = inspect.getsource(config)
    except OSError:
        return {}
    tree = ast.parse(textwrap.dedent(source))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for statement, following in zip(body, body[1:]):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[statement.target.id] = inspect.cleandoc(following.value.value)
    return docs


def flag_help(doc: str) -> str:
    """The first paragraph of a field's docstring as ``--help`` text: on one line, fields named
    by their flags, reST roles and literals as plain text, ``%`` escaped for argparse."""
    text = " ".join(doc.split("\n\n", 1)[0].split())
    text = re.sub(r":\w+:`~[\w.]*\.(\w+)`", r"\1", text)
    text = re.sub(r":\w+:`([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``", lambda m: flag_of(m[1]) if m[1] in _fields() else m[1], text)
    return text.replace("%", "%%")
