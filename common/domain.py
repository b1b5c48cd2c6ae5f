"""What a domain is, and the registry that finds one by name.

A domain says only what is particular to its task: its config, how to load its data,
its model, loss, metrics and the objective a search optimises, and what else it supplies
(demo data, whether folds suit it, a one-line model description, extra commands).
Training, schedules, callbacks, run directories, range tests, sweeps and searches live in
`common/` and are the same for every domain; `common/` never imports `domains/` except
here, by the module names below. Adding a fifth domain means one folder under `domains/`
and one line in `DOMAIN_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError

DOMAIN_MODULES = {
    "image_classification": "domains.image_classification",
    "medical_segmentation": "domains.medical_segmentation",
    "sentiment": "domains.sentiment",
    "translation": "domains.translation",
}


@dataclass
class DataBundle:
    """A domain's data, ready for `model.fit`.

    Attributes:
        train: batched training pipeline that repeats forever (the trainer passes
            `steps_per_epoch`); batches have equal size (drop_remainder=True), which
            keeps the per-batch loss recovery exact.
        val: batched validation pipeline (one pass), or None.
        test: batched test pipeline (one pass), or None.
        train_examples: examples in one pass over the training split.
        description: one line naming the data, for summaries and reports.
        info: domain-specific extras (vocabularies, class names, shapes) that
            `build_model` and `evaluate_extra` need.
        make_train: builds the training pipeline anew. A tf.data shuffle draws a new
            order each time the same pipeline is iterated, so a run given a bundle that
            earlier runs used (a sweep, a search) would see another order than a run
            that loaded the data itself; a fresh pipeline gives every run with one seed
            the same order. A bundle whose `train` is replaced needs its `make_train`
            replaced too.
    """

    train: Any
    val: Any
    test: Any
    train_examples: int
    description: str
    info: dict[str, Any] = field(default_factory=dict)
    make_train: Callable[[], Any] | None = None

    def fresh_train(self):
        """A training pipeline that nobody has iterated yet."""
        return self.make_train() if self.make_train is not None else self.train


@dataclass(frozen=True)
class Command:
    """An extra `lrsuite NAME ...` command that a domain supplies (e.g. `translate`).

    Attributes:
        name: the command's name on the command line.
        usage: its arguments, for `lrsuite --help` (e.g. "--run DIR TEXT ...").
        summary: what it does, a few words.
        run: argv (the arguments after the name) -> exit code; bad input is a UserError.
    """

    name: str
    usage: str
    summary: str
    run: Callable[[list[str]], int]


@dataclass(frozen=True)
class Domain:
    """One task of the suite.

    Attributes:
        name: the name used on the command line.
        config_cls: the domain's frozen `TrainConfig` subclass (defaults live there).
        load_data: config -> DataBundle; raises UserError on bad or missing data.
        build_model: (config, bundle) -> uncompiled keras.Model.
        loss: config -> a Keras loss.
        metrics: (config, bundle) -> list of Keras metrics (names give the summary
            keys); the bundle tells, e.g., how many classes there are.
        objective: the metric a search optimises, e.g. "val_accuracy".
        direction: "max" or "min" for that objective.
        evaluate_extra: optional (model, bundle, config, run_dir) -> dict of extra
            test metrics and artefacts (BLEU, confusion matrix, overlays).
        search_space: optional (hp, config) -> dict of config overrides for tuning.
        data_format: a few lines describing the local `--data` format, shown by
            `lrsuite train <domain> --help`.
        write_demo_data: optional folder -> path to pass as `--data`: writes a small
            generated dataset in the local format (`lrsuite demo`, the reliability tests).
        demo_overrides: config values of the demo's short sweep (on the smoke preset).
        fold_problem: optional config -> why K-fold cross-validation of its training
            split does not suit this config ("" when it does), e.g. random crops.
        describe_model: optional config values (a dict, as config.json holds them) ->
            one line naming the model, for reports.
        commands: extra `lrsuite` commands this domain supplies.
        test_time_flips: optional config -> the sets of input axes to flip at test
            time, e.g. ((2,),) for left-right on (batch, H, W, C) images; the run then
            also scores validation and test with the flip-averaged model
            (`common/test_time.py`). Empty when the config trains without flips.
    """

    name: str
    config_cls: type
    load_data: Callable[..., DataBundle]
    build_model: Callable[..., Any]
    loss: Callable[..., Any]
    metrics: Callable[..., list]
    objective: str
    direction: str
    evaluate_extra: Callable[..., dict] | None = None
    search_space: Callable[..., dict] | None = None
    data_format: str = ""
    write_demo_data: Callable[[Path], Path] | None = None
    demo_overrides: dict[str, Any] = field(default_factory=dict)
    fold_problem: Callable[[Any], str] | None = None
    describe_model: Callable[[dict[str, Any]], str] | None = None
    commands: tuple[Command, ...] = ()
    test_time_flips: Callable[[Any], tuple[tuple[int, ...], ...]] | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("max", "min"):
            raise ValueError(
                "direction must be 'max' or 'min'. "
                f"Received: direction={self.direction!r}"
            )


def domain_names() -> list[str]:
    return sorted(DOMAIN_MODULES)


def get_domain(name: str) -> Domain:
    """Import and return the domain called `name`; unknown names are a UserError."""
    if name not in DOMAIN_MODULES:
        raise UserError(
            f"unknown domain {name!r}. Expected one of: {', '.join(domain_names())}"
        )
    module = importlib.import_module(DOMAIN_MODULES[name])
    return module.DOMAIN


def domain_commands() -> dict[str, Command]:
    """The extra commands of every registered domain, by name (imports each domain)."""
    found: dict[str, Command] = {}
    for name in domain_names():
        for command in get_domain(name).commands:
            found[command.name] = command
    return found
