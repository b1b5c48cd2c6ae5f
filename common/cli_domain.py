"""What every `lrsuite COMMAND DOMAIN` shares: finding the domain, its parser (one flag per
config field) and the config the flags give. Imported by common/cli.py and the modules of
its commands (common/tune_cli.py), so that none of them imports another's internals."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from common.cli_args import OneLineParser, add_config_flags, config_from_args
from common.domain import Domain, domain_names, get_domain
from common.errors import UserError


def split_domain(command: str, argv: list[str]) -> tuple[str, list[str]]:
    """(domain name, the rest of the arguments); `COMMAND --help` lists the domains."""
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print(f"usage: lrsuite {command} DOMAIN [options]\n"
                  f"domains: {', '.join(domain_names())}\n"
                  f"'lrsuite {command} DOMAIN --help' lists every option.")
            raise SystemExit(0)
        raise UserError(f"{command} needs a domain: one of {', '.join(domain_names())}")
    return argv[0], argv[1:]


def domain_parser(command: str, domain_name: str) -> tuple[Domain, OneLineParser]:
    """The domain called `domain_name` and a parser with `--smoke` and its config flags."""
    domain = get_domain(domain_name)
    parser = OneLineParser(
        prog=f"lrsuite {command} {domain_name}",
        description=f"{command} the {domain_name} domain.",
        epilog=f"local data (--data): {domain.data_format}" if domain.data_format else None)
    parser.add_argument("--smoke", action="store_true",
                        help="Use the tiny test preset (few steps) as the base config.")
    add_config_flags(parser, domain.config_cls, objective=domain.objective)
    return domain, parser


def build_config(domain: Domain, parser: argparse.ArgumentParser, argv: list[str],
                 base: dict[str, Any] | None = None):
    """(namespace, config) from `argv`; a value the config rejects is a UserError.

    Splits the CPU into `--cpu-devices` here, before any data is loaded: TensorFlow must
    not have started its devices yet.
    """
    from common.distribute import prepare_devices

    namespace = parser.parse_args(argv)
    try:
        cfg = config_from_args(domain.config_cls, namespace, smoke=namespace.smoke, base=base)
    except ValueError as error:
        raise UserError(str(error)) from None
    prepare_devices(cfg.cpu_devices)
    return namespace, cfg


def given_config_values(cfg, namespace: argparse.Namespace) -> dict[str, Any]:
    """The config values of the flags given on the command line (flags default to absent),
    as the config holds them (parsed and checked)."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    return {name: getattr(cfg, name) for name in vars(namespace) if name in fields}


def view_command(log_dir: Path) -> str:
    """The one command that serves `log_dir` in TensorBoard, on this machine only."""
    return f"tensorboard --logdir {log_dir} --host 127.0.0.1"


def print_view_hint(log_dir: Path, report: Path | None = None, plot: Path | None = None) -> None:
    """After a run: how to look at it (TensorBoard, and the report or plot if there is one)."""
    print(f"view: {view_command(log_dir)}   (then open http://127.0.0.1:6006/)", flush=True)
    for label, path in (("open", report), ("plot", plot)):
        if path is not None:
            print(f"      {label} {path}", flush=True)
