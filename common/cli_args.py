"""Command-line flags generated from a config dataclass (one flag per field)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from common.schedule_registry import parse_assignments

ALIASES = {"learning_rate": ["--lr"]}  # dict fields get their own --schedule-arg flag


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit code 2, no usage dump."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"lrsuite: error: {message}. See '{self.prog} --help'.\n")


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the non-None type, whether None is allowed)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) == 1:
            return rest[0], optional
        return str, optional  # e.g. float | str: the config validates it
    return annotation, False


def _tuple_parser(item_type: type):
    def parse(text: str) -> tuple:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            return tuple(item_type(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {item_type.__name__} values joined by ','; got {text!r}"
            ) from None

    return parse


def field_help(config_cls: type, name: str) -> str:
    """The help of field `name`: a subclass that only changes a default (`epochs: int = 12`)
    keeps the help its base class wrote."""
    for cls in config_cls.__mro__:
        fields = getattr(cls, "__dataclass_fields__", {})
        if name in fields and fields[name].metadata.get("help"):
            return fields[name].metadata["help"]
    return ""


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type,
                     objective: str | None = None) -> None:
    """Add `--field-name` for every field of `config_cls` (defaults left to the class).
    `{objective}` in a help text becomes the domain's objective (e.g. val_accuracy)."""
    hints = typing.get_type_hints(config_cls)
    group = parser.add_argument_group(f"{config_cls.__name__} options")
    for item in dataclasses.fields(config_cls):
        if item.name == "domain":
            continue
        flag = "--" + item.name.replace("_", "-")
        names = [flag] + ALIASES.get(item.name, [])
        kind, _ = _base_type(hints[item.name])
        default = item.default if item.default is not dataclasses.MISSING else None
        help_text = field_help(config_cls, item.name)
        help_text = help_text.replace("{objective}", objective or "the validation objective")
        if default not in (None, dataclasses.MISSING) and not isinstance(default, dict):
            help_text += f" (default: {default})"
        common = {"dest": item.name, "default": argparse.SUPPRESS, "help": help_text}
        origin = typing.get_origin(kind)
        if kind is bool:
            group.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
        elif origin is dict:
            group.add_argument(
                "--schedule-arg", dest=item.name, action="append", metavar="KEY=VALUE",
                default=argparse.SUPPRESS, help=help_text)
        elif origin is tuple:
            item_type = typing.get_args(kind)[0]
            group.add_argument(*names, type=_tuple_parser(item_type), metavar="A,B,...", **common)
        elif kind in (int, float):
            group.add_argument(*names, type=kind, **common)
        else:
            group.add_argument(*names, type=str, **common)


def config_from_args(config_cls: type, namespace: argparse.Namespace, *, smoke: bool = False,
                     base: dict[str, Any] | None = None):
    """Build the config: class defaults (or the smoke preset), then `base`, then flags.

    Raises:
        ValueError: a value the config rejects, or a malformed --schedule-arg.
    """
    names = {f.name for f in dataclasses.fields(config_cls)}
    values = dict(base or {})
    values.update({k: v for k, v in vars(namespace).items() if k in names})
    if "schedule_args" in values and isinstance(values["schedule_args"], list):
        values["schedule_args"] = parse_assignments(values["schedule_args"])
    if smoke:
        return config_cls.smoke(**values)
    return config_cls(**values)


SEEDS_FORMAT = "a count from --seed on, or seeds joined by ','; default: --seed alone"


def add_seeds_argument(parser, what: str) -> None:
    """The `--seeds` option, read by `common.evidence.parse_seeds`; `what` says what each seed runs."""
    parser.add_argument("--seeds", default=None, metavar="N|S1,S2,...",
                        help=f"{what} ({SEEDS_FORMAT})")
