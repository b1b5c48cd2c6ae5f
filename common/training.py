"""The one training path: config -> data -> model -> optimizer and schedule -> callbacks
-> run directory -> TensorBoard. `train`, `lr-find` (a range test is a short run with
the `range_test` schedule), sweeps and tuner trials all use it.

A rate of 'auto' is resolved before this module is called (`common.lr_finder`), so a
run only ever trains at a number.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from common import callbacks as cb
from common.config import TrainConfig
from common.diagnosis import diagnose_run
from common.distribute import strategy_for
from common.domain import DataBundle, Domain
from common.errors import UserError
from common.optim import build_optimizer
from common.optimizers import callbacks_for
from common.optimizers.averaging import enable_weight_averaging
from common.resume import (
    BACKUP_DIR,
    MODEL_FILE,
    ResumableBackup,
    completed_epochs,
    release_weights,
    resume_changes,
)
from common.run_steps import restart_steps_csv
from common.runs import create_run_dir, default_run_name, existing_run_dir, read_json, write_json
from common.schedule_registry import Plan, build_schedule
from common.seed import set_seed
from common.sharpness_callback import SharpnessProbe
from common.test_time import flip_averaged_scores

RUN_KINDS = ("train", "range_test")  # a range test neither validates, tests nor saves


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    model: Any = field(default=None, repr=False)
    recorder: Any = field(default=None, repr=False)


def steps_per_epoch_for(cfg: TrainConfig, bundle: DataBundle) -> int:
    full = bundle.train_examples // cfg.batch_size
    if full < 1:
        raise UserError(
            f"batch_size {cfg.batch_size} is larger than the training split "
            f"({bundle.train_examples} examples). Lower --batch-size."
        )
    return min(full, cfg.steps_per_epoch) if cfg.steps_per_epoch else full


def plan_schedule(cfg: TrainConfig, learning_rate: float, steps_per_epoch: int) -> Plan:
    try:
        return build_schedule(
            cfg.schedule,
            learning_rate,
            steps_per_epoch=steps_per_epoch,
            epochs=cfg.epochs,
            warmup_epochs=cfg.warmup_epochs,
            args=cfg.schedule_args,
        )
    except ValueError as error:
        raise UserError(f"--schedule {cfg.schedule}: {error}") from None


def compile_model(domain: Domain, cfg: TrainConfig, model, learning_rate,
                  bundle: DataBundle | None = None) -> None:
    optimizer = build_optimizer(
        cfg.optimizer,
        learning_rate,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        epsilon=cfg.epsilon,
        clipnorm=cfg.clipnorm,
    )
    if cfg.weight_averaging:
        enable_weight_averaging(optimizer, cfg.weight_averaging)
    jit = {"auto": "auto", "on": True, "off": False}[cfg.jit_compile]
    model.compile(optimizer=optimizer, loss=domain.loss(cfg), metrics=domain.metrics(cfg, bundle),
                  jit_compile=jit)


def _verbosity(cfg: TrainConfig) -> int:
    if cfg.verbose >= 0:
        return cfg.verbose
    return 1 if sys.stdout.isatty() else 2


def _probe_batch(train):
    """The first batch of a training pipeline of its own (iterating one moves its order)."""
    for batch in train.take(1):
        return batch[0], batch[1]
    return None


def _split_metrics(history: dict[str, list[float]]) -> dict[str, float]:
    """Final epoch values under plain keys: train_loss, val_accuracy, ..."""
    out = {}
    for key, values in history.items():
        if not values or key == "learning_rate":
            continue
        name = key if key.startswith("val_") else f"train_{key}"
        out[name] = values[-1]
    return out


@dataclass
class _Opened:
    """A run directory ready to train into, and what an interrupted run left there."""

    run_dir: Path
    previous: dict[str, Any]
    done_epochs: int
    budget_changes: list[dict[str, Any]]


def _open_run_dir(domain: Domain, cfg: TrainConfig, root: Path, run_dir: Path | None,
                  requested_rate: Any) -> _Opened:
    """The run directory: made fresh, or the one to resume after checking that the
    command is the run's own (else a UserError, and nothing is touched)."""
    if not cfg.resume:
        if run_dir is None:
            name = cfg.run_name or default_run_name(cfg.optimizer, cfg.schedule, cfg.learning_rate)
            run_dir = create_run_dir(root, name)
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
        return _Opened(run_dir, {}, 0, [])
    run_dir = run_dir or existing_run_dir(root, cfg.run_name)
    if not (run_dir / "config.json").is_file():
        raise UserError(f"{run_dir}: no run to resume there (config.json missing).")
    stored = read_json(run_dir / "config.json")
    previous = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else {}
    done = completed_epochs(run_dir / BACKUP_DIR)
    wanted = {**cfg.to_dict(), "learning_rate": requested_rate}
    grown = resume_changes(stored, wanted, done)
    changes = list(previous.get("budget_changes", []))
    for name, (old, new) in grown.items():
        changes.append({"field": name, "from": old, "to": new, "at_epoch": done})
    return _Opened(run_dir, previous, done, changes)


def run_training(
    domain: Domain,
    cfg: TrainConfig,
    *,
    bundle: DataBundle | None = None,
    extra_callbacks: list | None = None,
    save_model: bool = True,
    announce: bool = True,
    run_root: Path | None = None,
    run_dir: Path | None = None,
    range_test: dict[str, Any] | None = None,
    requested_learning_rate: Any = None,
    kind: str = "train",
) -> RunResult:
    """Train `domain` with `cfg` in a run directory and return its summary.

    Bad input (data, schedule, a resume with other flags) raises UserError before
    anything is written. A diverged run stops at once and is returned with status
    "diverged"; Ctrl-C ends it as "interrupted"; both keep everything written so far.

    Args:
        run_root: replaces `<output>/<domain>` as the folder runs are made in.
        run_dir: the run's own directory, when the caller chose it (a range test's).
        range_test: the summary of the range test that chose the rate, recorded in
            the run's summary and used by its diagnosis.
        requested_learning_rate: what the user asked for ('auto'), when the caller
            resolved it to `cfg.learning_rate`.
        kind: "train", or "range_test" (no validation, test, saved model or diagnosis).
    """
    if kind not in RUN_KINDS:
        raise ValueError(f"kind must be one of {RUN_KINDS}. Received: kind={kind!r}")
    if not isinstance(cfg.learning_rate, float):
        raise ValueError("run_training needs a numeric learning rate; resolve 'auto' first "
                         "with common.lr_finder.resolve_learning_rate.")
    requested = cfg.learning_rate if requested_learning_rate is None else requested_learning_rate
    strategy = strategy_for(cfg)  # first: splitting the CPU must precede TensorFlow's start
    root = run_root or Path(cfg.output) / domain.name
    # A resume is checked before the data loads (it writes nothing); a new run directory
    # is made only once the data and the schedule have passed their checks.
    opened = _open_run_dir(domain, cfg, root, run_dir, requested) if cfg.resume else None
    set_seed(cfg.seed, cfg.deterministic)
    bundle = bundle or domain.load_data(cfg)
    steps_per_epoch = steps_per_epoch_for(cfg, bundle)
    plan = plan_schedule(cfg, cfg.learning_rate, steps_per_epoch)
    opened = opened or _open_run_dir(domain, cfg, root, run_dir, requested)
    run_dir = opened.run_dir
    if announce:
        print(f"run directory: {run_dir}", flush=True)
    write_json(run_dir / "config.json", {**cfg.to_dict(), "requested_learning_rate": requested})

    set_seed(cfg.seed, cfg.deterministic)
    with strategy.scope():  # weights, optimizer slots and metrics on every replica
        model = domain.build_model(cfg, bundle)
        compile_model(domain, cfg, model, plan.learning_rate, bundle)

    done = opened.done_epochs
    recorder = cb.StepRecorder(run_dir / "train", run_dir / "steps.csv",
                               log_every=1 if kind == "range_test" else cfg.log_lr_every,
                               first_step=done * steps_per_epoch, schedule=plan.learning_rate)
    recorder.load_previous(restart_steps_csv(run_dir / "steps.csv", done * steps_per_epoch))
    history = {k: v[:done] for k, v in opened.previous.get("history", {}).items()}
    summary = _start_summary(domain, cfg, bundle, strategy, run_dir, steps_per_epoch, history,
                             kind)
    if opened.budget_changes:
        summary["budget_changes"] = opened.budget_changes
    if range_test is not None:
        summary["lr_find"] = range_test

    def journal_update(epochs_history: dict[str, list[float]]) -> None:
        summary["history"] = epochs_history
        summary["epochs_run"] = len(epochs_history.get("loss", []))
        write_json(run_dir / "summary.json", summary)

    watch = cb.DivergenceWatch(recorder, factor=cfg.divergence_factor)
    journal = cb.EpochJournal(journal_update, history)
    callbacks = [
        *callbacks_for(model.optimizer, run_dir / "train", cfg.log_lr_every),  # first
        recorder, watch, journal, keras.callbacks.TensorBoard(log_dir=str(run_dir)),
        ResumableBackup(run_dir / BACKUP_DIR),
    ]
    dynamics = None
    if cfg.monitor_every and kind == "train":
        dynamics = cb.TrainingDynamics(
            run_dir / "train", cfg.monitor_every, _probe_batch(bundle.fresh_train()),
            domain.loss(cfg))
        callbacks.append(dynamics)
    sharpness = None
    if cfg.sharpness_every and kind == "train":
        sharpness = SharpnessProbe(run_dir, cfg.sharpness_every,
                                   _probe_batch(bundle.fresh_train()), domain.loss(cfg))
        callbacks.append(sharpness)
    validation = bundle.val if kind == "train" else None
    callbacks.extend(_stopping_callbacks(domain, cfg, plan, validation))
    callbacks.extend(extra_callbacks or [])
    write_json(run_dir / "summary.json", summary)

    train = bundle.fresh_train()  # the order a run with this seed always sees
    if done:
        # Same batches as an uninterrupted run: skip what the finished epochs consumed.
        train = train.skip(done * steps_per_epoch)
    started = time.perf_counter()
    status = "completed"
    try:
        model.fit(train, epochs=cfg.epochs, steps_per_epoch=steps_per_epoch,
                  validation_data=validation, callbacks=callbacks, verbose=_verbosity(cfg),
                  shuffle=False)  # the tf.data pipeline shuffles itself
    except KeyboardInterrupt:
        status = "interrupted"
    except Exception:
        summary["status"] = "failed"
        summary["wall_time_s"] = time.perf_counter() - started
        write_json(run_dir / "summary.json", summary)
        raise
    wall = time.perf_counter() - started
    if watch.diverged:
        status = "diverged"
    new_steps = sum(1 for s in recorder.steps if s >= done * steps_per_epoch)
    summary.update(_split_metrics(journal.history))
    summary.update({
        "status": status,
        "epochs_run": len(journal.history.get("loss", [])),
        "steps_run": len(recorder.steps),
        "wall_time_s": round(wall, 3),
        "examples_per_second": round(new_steps * cfg.batch_size / wall, 2) if wall > 0 else None,
    })
    if sharpness is not None:
        summary["sharpness"] = sharpness.summary()
    if watch.diverged:
        summary["divergence"] = {"step": watch.step, "reason": watch.reason}
    if dynamics is not None:
        summary["update_ratios"] = [r["update_ratio/global"] for r in dynamics.records]
    if kind == "train":
        _evaluate_and_save(domain, cfg, model, bundle, run_dir, summary, save_model)
        summary["diagnosis"] = diagnose_run(summary, recorder.losses)
    write_json(run_dir / "summary.json", summary)
    if announce:
        _announce_end(domain, summary, run_dir, watch)
    return RunResult(run_dir=run_dir, summary=summary, model=model, recorder=recorder)


def _start_summary(domain, cfg, bundle, strategy, run_dir, steps_per_epoch, history,
                   kind) -> dict[str, Any]:
    return {
        "domain": domain.name,
        "kind": kind,
        "run_dir": str(run_dir),
        "data": bundle.description,
        "status": "running",
        "learning_rate": cfg.learning_rate,
        "optimizer": cfg.optimizer,
        "schedule": cfg.schedule,
        "epochs_planned": cfg.epochs,
        "steps_per_epoch": steps_per_epoch,
        "warmup_steps": round(cfg.warmup_epochs * steps_per_epoch),
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "strategy": cfg.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "objective": domain.objective,
        "direction": domain.direction,
        "history": history,
    }


def _stopping_callbacks(domain: Domain, cfg: TrainConfig, plan: Plan, validation) -> list:
    """Plateau reduction and early stopping, on the validation objective if there is one."""
    callbacks = []
    if plan.plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss" if validation is not None else "loss", verbose=1, **plan.plateau))
    if cfg.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=domain.objective if validation is not None else "loss",
            mode=domain.direction if validation is not None else "min",
            patience=cfg.early_stopping, restore_best_weights=True))
    return callbacks


def _evaluate_and_save(domain, cfg, model, bundle, run_dir, summary, save_model) -> None:
    if summary["status"] != "completed":
        return
    if bundle.test is not None:
        results = model.evaluate(bundle.test, return_dict=True, verbose=0)
        summary.update({f"test_{k}": float(v) for k, v in results.items()})
        if domain.evaluate_extra is not None:
            summary.update(domain.evaluate_extra(model, bundle, cfg, run_dir))
    flips = domain.test_time_flips(cfg) if domain.test_time_flips is not None else ()
    if flips:
        summary.update(flip_averaged_scores(
            model, flips, domain.loss(cfg), domain.metrics(cfg, bundle),
            {"val": bundle.val, "test": bundle.test}))
    if save_model:
        model.save(run_dir / MODEL_FILE)
        release_weights(run_dir)


def _announce_end(domain, summary, run_dir, watch) -> None:
    objective = summary.get(domain.objective)
    verdict = summary["diagnosis"]["verdict"] if summary.get("diagnosis") else "-"
    print(f"{summary['status']}: {domain.objective}={objective} diagnosis={verdict} -> {run_dir}",
          flush=True)
    if watch.diverged:
        print(f"diverged: {watch.reason}; the run directory keeps everything so far.", flush=True)

