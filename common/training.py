"""The one training path: config -> data -> model -> optimizer and schedule -> callbacks
-> run directory -> TensorBoard. `train`, `lr-find`, sweeps and tuner trials all use it.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras

from common import callbacks as cb
from common.config import TrainConfig
from common.diagnosis import diagnose
from common.distribute import strategy_for
from common.domain import DataBundle, Domain
from common.errors import UserError
from common.optim import build_optimizer
from common.optimizers import callbacks_for
from common.runs import (
    create_run_dir,
    default_run_name,
    existing_run_dir,
    read_json,
    write_json,
)
from common.schedule_registry import Plan, build_schedule
from common.seed import set_seed


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    model: Any = field(default=None, repr=False)


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
    jit = {"auto": "auto", "on": True, "off": False}[cfg.jit_compile]
    model.compile(optimizer=optimizer, loss=domain.loss(cfg), metrics=domain.metrics(cfg, bundle),
                  jit_compile=jit)


def _verbosity(cfg: TrainConfig) -> int:
    if cfg.verbose >= 0:
        return cfg.verbose
    return 1 if sys.stdout.isatty() else 2


def _probe_batch(bundle: DataBundle):
    for batch in bundle.train.take(1):
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


def _read_steps(path: Path, keep_below: int) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as stream:
        rows = [row for row in csv.DictReader(stream) if int(row["step"]) < keep_below]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=cb.STEP_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def run_training(
    domain: Domain,
    cfg: TrainConfig,
    *,
    bundle: DataBundle | None = None,
    extra_callbacks: list | None = None,
    save_model: bool = True,
    announce: bool = True,
    run_root: Path | None = None,
) -> RunResult:
    """Train `domain` with `cfg` in a new run directory and return its summary.

    Bad input (data, schedule) raises UserError before any directory is created. A
    diverged run stops at once and is returned with status "diverged"; Ctrl-C ends it
    as "interrupted"; both keep everything written so far. `run_root` replaces
    `<output>/<domain>` as the folder the run directory is made in (sweeps, searches).
    """
    strategy = strategy_for(cfg)  # first: splitting the CPU must precede TensorFlow's start
    set_seed(cfg.seed, cfg.deterministic)
    bundle = bundle or domain.load_data(cfg)
    steps_per_epoch = steps_per_epoch_for(cfg, bundle)
    probe_rate = cfg.learning_rate if isinstance(cfg.learning_rate, float) else 1e-3
    plan_schedule(cfg, probe_rate, steps_per_epoch)  # validate before writing anything

    root = run_root or Path(cfg.output) / domain.name
    if cfg.resume:
        run_dir = existing_run_dir(root, cfg.run_name)
        previous = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else {}
    else:
        name = cfg.run_name or default_run_name(cfg.optimizer, cfg.schedule, cfg.learning_rate)
        run_dir = create_run_dir(root, name)
        previous = {}
    if announce:
        print(f"run directory: {run_dir}", flush=True)

    learning_rate = cfg.learning_rate
    finder = None
    if learning_rate == "auto":
        if previous.get("learning_rate"):
            learning_rate = float(previous["learning_rate"])
        else:
            from common.lr_finder import find_learning_rate

            finder = find_learning_rate(domain, cfg, bundle=bundle, out_dir=run_dir / "lr_find")
            learning_rate = finder.suggestion
            if announce:
                print(f"range test suggests learning rate {learning_rate:.3g}", flush=True)
    plan = plan_schedule(cfg, learning_rate, steps_per_epoch)
    write_json(run_dir / "config.json", {**cfg.to_dict(), "learning_rate": learning_rate,
                                          "requested_learning_rate": cfg.learning_rate})

    set_seed(cfg.seed, cfg.deterministic)
    with strategy.scope():  # weights, optimizer slots and metrics on every replica
        model = domain.build_model(cfg, bundle)
        compile_model(domain, cfg, model, plan.learning_rate, bundle)

    steps_csv = run_dir / "steps.csv"
    previous_epochs = len(previous.get("history", {}).get("loss", []))
    recorder = cb.StepRecorder(run_dir / "train", steps_csv, log_every=cfg.log_lr_every)
    recorder.load_previous(_read_steps(steps_csv, previous_epochs * steps_per_epoch))
    watch = cb.DivergenceWatch(recorder, factor=cfg.divergence_factor)
    history = {k: v[:previous_epochs] for k, v in previous.get("history", {}).items()}

    summary: dict[str, Any] = {
        "domain": domain.name,
        "run_dir": str(run_dir),
        "data": bundle.description,
        "status": "running",
        "learning_rate": learning_rate,
        "optimizer": cfg.optimizer,
        "schedule": cfg.schedule,
        "epochs_planned": cfg.epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "strategy": cfg.strategy,
        "replicas": strategy.num_replicas_in_sync,
        "objective": domain.objective,
        "direction": domain.direction,
        "history": history,
    }
    if finder is not None:
        summary["lr_find"] = finder.as_summary()

    def journal_update(epochs_history: dict[str, list[float]]) -> None:
        summary["history"] = epochs_history
        summary["epochs_run"] = len(epochs_history.get("loss", []))
        write_json(run_dir / "summary.json", summary)

    journal = cb.EpochJournal(journal_update, history)
    callbacks = [
        *callbacks_for(model.optimizer, run_dir / "train", cfg.log_lr_every),  # first
        recorder,
        watch,
        journal,
        keras.callbacks.TensorBoard(log_dir=str(run_dir)),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), delete_checkpoint=False),
    ]
    dynamics = None
    if cfg.monitor_every:
        dynamics = cb.TrainingDynamics(
            run_dir / "train", cfg.monitor_every, _probe_batch(bundle), domain.loss(cfg)
        )
        callbacks.append(dynamics)
    if plan.plateau:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss" if bundle.val is not None else "loss", verbose=1,
            **plan.plateau))
    if cfg.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=domain.objective if bundle.val is not None else "loss",
            mode=domain.direction if bundle.val is not None else "min",
            patience=cfg.early_stopping, restore_best_weights=True))
    callbacks.extend(extra_callbacks or [])
    write_json(run_dir / "summary.json", summary)

    train = bundle.train
    if previous_epochs:
        # Same batches as an uninterrupted run: skip what the finished epochs consumed.
        train = train.skip(previous_epochs * steps_per_epoch)
    started = time.perf_counter()
    status = "completed"
    try:
        model.fit(
            train,
            epochs=cfg.epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=bundle.val,
            callbacks=callbacks,
            verbose=_verbosity(cfg),
            shuffle=False,  # the tf.data pipeline shuffles itself
        )
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
    new_steps = sum(1 for s in recorder.steps if s >= previous_epochs * steps_per_epoch)

    summary.update(_split_metrics(journal.history))
    summary.update({
        "status": status,
        "epochs_run": len(journal.history.get("loss", [])),
        "steps_run": len(recorder.steps),
        "wall_time_s": round(wall, 3),
        "examples_per_second": round(new_steps * cfg.batch_size / wall, 2) if wall > 0 else None,
    })
    if watch.diverged:
        summary["divergence"] = {"step": watch.step, "reason": watch.reason}

    if status == "completed" and bundle.test is not None:
        results = model.evaluate(bundle.test, return_dict=True, verbose=0)
        summary.update({f"test_{k}": float(v) for k, v in results.items()})
        if domain.evaluate_extra is not None:
            summary.update(domain.evaluate_extra(model, bundle, cfg, run_dir))
    if status == "completed" and save_model:
        model.save(run_dir / "model.keras")

    objective = summary.get(domain.objective)
    epoch_losses = journal.history.get("loss", [])
    ratios = [r["update_ratio/global"] for r in (dynamics.records if dynamics else [])]
    summary["diagnosis"] = diagnose(
        recorder.losses,
        diverged=watch.diverged,
        divergence_reason=watch.reason,
        epoch_losses=epoch_losses,
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        learning_rate=learning_rate,
        suggested_learning_rate=finder.suggestion if finder else None,
        update_ratios=ratios,
        final_metric=(domain.objective, objective) if objective is not None and math.isfinite(objective) else None,
        objective_history=journal.history.get(domain.objective, []),
        direction=domain.direction,
    )
    write_json(run_dir / "summary.json", summary)
    if announce:
        verdict = summary["diagnosis"]["verdict"]
        print(f"{status}: {domain.objective}={objective} diagnosis={verdict} -> {run_dir}",
              flush=True)
        if watch.diverged:
            print(f"diverged: {watch.reason}; the run directory keeps everything so far.",
                  flush=True)
    return RunResult(run_dir=run_dir, summary=summary, model=model)
