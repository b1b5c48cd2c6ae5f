"""Population-based training (Jaderberg et al. 2017) as a Keras Tuner Oracle.

Each (member, round) is one trial of `ready_epochs` epochs at a constant rate. Its
hyperparameters carry the member, the round and the checkpoint it starts from; the
trial writes its end-of-round weights and optimizer state to
`<search>/pbt/member-<m>/round-<r>/checkpoint.weights.h5`, so a chief and workers on one
shared folder see each other's checkpoints. When a round has ended, the oracle ranks the
members on the objective: the bottom fraction copies a top member's checkpoint and
hyperparameters (exploit) and multiplies the rate by 0.8 or 1.25 (explore), or, with
`resample_probability` (default 0: every explore is a factor, which keeps the learned
schedule a chain of small steps), draws a new rate from the space. Until a round has
ended, requests for the next one get IDLE.

The plans of every round are part of the oracle's state (get_state/set_state, saved by
Keras Tuner in oracle.json), so a resumed search makes the same decisions and runs no
finished round again.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path
from typing import Any

import keras
import keras_tuner

from common.errors import UserError
from common.runs import write_json

# A trial's own hyperparameters, beside the space's: who it is and where it starts from.
MEMBER, ROUND, PARENT = "pbt/member", "pbt/round", "pbt/parent"
DONOR, MOVE = "pbt/donor", "pbt/move"
PBT_KEYS = (MEMBER, ROUND, PARENT, DONOR, MOVE)
EXPLORE_FACTORS = (0.8, 1.25)
CHECKPOINT_FILE = "checkpoint.weights.h5"
RATE = "learning_rate"
_ENDED = (keras_tuner.engine.trial.TrialStatus.COMPLETED,
          keras_tuner.engine.trial.TrialStatus.FAILED)


def check_pbt_options(population: int | None, ready_epochs: int | None, rounds: int | None,
                      max_epochs: int) -> tuple[int, int, int]:
    """(population, ready_epochs, rounds) checked; rounds default to max_epochs // K."""
    if population is None or population < 2:
        raise UserError(f"--population must be an integer >= 2 for --tuner pbt. "
                        f"Received: {population}")
    if ready_epochs is None or ready_epochs < 1:
        raise UserError(f"--ready-epochs must be an integer >= 1 for --tuner pbt. "
                        f"Received: {ready_epochs}")
    if rounds is None:
        rounds = max_epochs // ready_epochs
        if rounds < 1:
            raise UserError(f"--ready-epochs {ready_epochs} is longer than --max-epochs "
                            f"{max_epochs}: lower it or give --rounds.")
    if rounds < 1:
        raise UserError(f"--rounds must be >= 1. Received: {rounds}")
    return population, ready_epochs, rounds


def checkpoint_path(search_dir: Path, relative: str) -> Path:
    return Path(search_dir) / "pbt" / relative / CHECKPOINT_FILE


def member_folder(member: int, round_index: int) -> str:
    return f"member-{member}/round-{round_index}"


def keep_checkpoint(run_dir: Path, search_dir: Path, member: int, round_index: int) -> Path:
    """Copy a finished trial's weights and optimizer state to its member's round folder
    (through a temporary name, so a kill never leaves half a file under the real one)."""
    source = Path(run_dir) / "backup" / "latest.weights.h5"
    target = checkpoint_path(search_dir, member_folder(member, round_index))
    if target.exists():
        return target
    if not source.exists():
        raise UserError(f"{run_dir}: no backup weights to keep for the population; the "
                        "trial ended before its first epoch.")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    shutil.copyfile(source, temporary)
    temporary.replace(target)
    return target


class StartFromCheckpoint(keras.callbacks.Callback):
    """Loads a parent's weights and optimizer state before the first step, then sets the
    member's own rate (the checkpoint holds the parent's)."""

    def __init__(self, path: Path, learning_rate: float):
        super().__init__()
        self.path = Path(path)
        self.learning_rate = learning_rate

    def on_train_begin(self, logs=None):
        if not self.path.exists():
            raise UserError(f"{self.path}: the parent checkpoint of this PBT trial is missing.")
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(self.path))
        optimizer.learning_rate = self.learning_rate


class PopulationOracle(keras_tuner.Oracle):
    """PBT over `population` members for `rounds` rounds (see the module's docstring).

    Args:
        population: members trained side by side (>= 2).
        rounds: rounds of `ready_epochs` epochs each member runs.
        fraction: share of members replaced each round (and of donors), at least one
            when population >= 4.
        resample_probability: chance that an explore draws a new rate from the space
            instead of multiplying it.
    """

    def __init__(self, *, population: int, rounds: int, fraction: float = 0.2,
                 resample_probability: float = 0.0, **kwargs):
        super().__init__(max_trials=population * rounds, **kwargs)
        if not 0 < fraction <= 0.5:
            raise UserError(f"PBT fraction must be in (0, 0.5]. Received: {fraction}")
        if not 0 <= resample_probability <= 1:
            raise UserError("PBT resample probability must be in [0, 1]. Received: "
                            f"{resample_probability}")
        self.population = population
        self.rounds = rounds
        self.fraction = fraction
        self.resample_probability = resample_probability
        self.plans: dict[int, dict[int, dict[str, Any]]] = {}

    # -- what exists ---------------------------------------------------------------------
    def trials_of_round(self, round_index: int) -> dict[int, Any]:
        return {int(t.hyperparameters.values[MEMBER]): t for t in self.trials.values()
                if int(t.hyperparameters.values.get(ROUND, -1)) == round_index}

    def member_score(self, trial) -> float:
        worst = -math.inf if self.objective.direction == "max" else math.inf
        score = trial.score
        if trial.status != "COMPLETED" or score is None or not math.isfinite(score):
            return worst
        return float(score)

    # -- the search ----------------------------------------------------------------------
    def populate_space(self, trial_id):
        for round_index in range(self.rounds):
            made = self.trials_of_round(round_index)
            if len(made) < self.population:
                break
        else:
            return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}
        member = min(set(range(self.population)) - set(made))
        if round_index == 0:
            values = self._sample()
            values.update({MEMBER: member, ROUND: 0, PARENT: "", DONOR: -1, MOVE: "start"})
            return {"status": "RUNNING", "values": values}
        previous = self.trials_of_round(round_index - 1)
        if any(t.status not in _ENDED for t in previous.values()):
            return {"status": keras_tuner.engine.trial.TrialStatus.IDLE, "values": None}
        if round_index not in self.plans:
            self.plans[round_index] = self.plan_round(round_index, previous)
        return {"status": "RUNNING", "values": dict(self.plans[round_index][member])}

    def _sample(self) -> dict[str, Any]:
        hps = keras_tuner.HyperParameters()
        for hp in self.hyperparameters.space:
            if hp.name in PBT_KEYS:
                continue
            hps.merge([hp])
            if hps.is_active(hp):
                hps.values[hp.name] = hp.random_sample(self._seed_state)
                self._seed_state += 1
        return dict(hps.values)

    def plan_round(self, round_index: int, previous: dict[int, Any]) -> dict[int, dict]:
        """Each member's values for `round_index`, from the ranking of the round before."""
        sign = -1 if self.objective.direction == "max" else 1
        ranked = sorted(previous, key=lambda m: (sign * self.member_score(previous[m]), m))
        count = math.floor(self.population * self.fraction)
        if self.population >= 4:
            count = max(1, count)
        finite = [m for m in ranked if math.isfinite(self.member_score(previous[m]))]
        donors = finite[:max(count, 1)]
        # Members without a usable score (diverged, failed) are always replaced.
        replaced = set(ranked[len(ranked) - count:]) if count else set()
        replaced |= {m for m in ranked if m not in finite}
        replaced -= set(donors)
        rng = random.Random(f"{self.seed}-{round_index}")
        plan = {}
        for member in range(self.population):
            if member in replaced and donors:
                donor = rng.choice(donors)
                values = dict(previous[donor].hyperparameters.values)
                if rng.random() < self.resample_probability:
                    values[RATE] = self._sample().get(RATE, values[RATE])
                    move = "resample"
                else:
                    factor = rng.choice(EXPLORE_FACTORS)
                    values[RATE] = float(values[RATE]) * factor
                    move = f"x{factor}"
            else:
                donor = member
                values = dict(previous[member].hyperparameters.values)
                move = "continue"
            values.update({MEMBER: member, ROUND: round_index, DONOR: donor, MOVE: move,
                           PARENT: member_folder(donor, round_index - 1)})
            plan[member] = values
        self.write_record()
        return plan

    def get_best_trials(self, num_trials=1):
        """The last round's members first: their weights carry the whole schedule."""
        ranked = super().get_best_trials(len(self.trials) or 1)
        last = max((int(t.hyperparameters.values.get(ROUND, 0)) for t in ranked), default=0)
        ranked.sort(key=lambda t: int(t.hyperparameters.values.get(ROUND, 0)) != last)
        return ranked[:num_trials]

    # -- state ---------------------------------------------------------------------------
    def get_state(self):
        state = super().get_state()
        state["pbt"] = {
            "population": self.population, "rounds": self.rounds, "fraction": self.fraction,
            "resample_probability": self.resample_probability,
            "plans": {str(r): {str(m): v for m, v in plan.items()}
                      for r, plan in self.plans.items()},
        }
        return state

    def set_state(self, state):
        super().set_state(state)
        pbt = state["pbt"]
        self.population, self.rounds = pbt["population"], pbt["rounds"]
        self.fraction = pbt["fraction"]
        self.resample_probability = pbt["resample_probability"]
        self.plans = {int(r): {int(m): v for m, v in plan.items()}
                      for r, plan in pbt["plans"].items()}

    def write_record(self) -> dict[str, Any] | None:
        """pbt.json in the search folder (the oracle's project folder's parent)."""
        if getattr(self, "_directory", None) is None:
            return None
        record = population_record(self)
        write_json(Path(self._directory) / "pbt.json", record)
        return record


def population_record(oracle: PopulationOracle) -> dict[str, Any]:
    """Every member's rate, score, donor and move per round, and the winner's lineage."""
    members: dict[str, list[dict[str, Any]]] = {}
    by_folder = {}
    for trial in sorted(oracle.trials.values(), key=lambda t: t.trial_id):
        values = trial.hyperparameters.values
        member, round_index = int(values[MEMBER]), int(values[ROUND])
        entry = {"round": round_index, "trial": trial.trial_id, "rate": float(values[RATE]),
                 "score": _finite_or_none(trial.score), "status": trial.status,
                 "donor": int(values[DONOR]), "move": values[MOVE],
                 "parent": values[PARENT] or None}
        members.setdefault(str(member), []).append(entry)
        by_folder[member_folder(member, round_index)] = entry
    for entries in members.values():
        entries.sort(key=lambda e: e["round"])
    record: dict[str, Any] = {"population": oracle.population, "rounds": oracle.rounds,
                              "fraction": oracle.fraction,
                              "resample_probability": oracle.resample_probability,
                              "objective": oracle.objective.name,
                              "direction": oracle.objective.direction,
                              "members": members, "winner": None}
    best = [t for t in oracle.get_best_trials(1)
            if t.status == "COMPLETED" and _finite_or_none(t.score) is not None]
    if best:
        values = best[0].hyperparameters.values
        lineage = [by_folder[member_folder(int(values[MEMBER]), int(values[ROUND]))]]
        while lineage[-1]["parent"]:
            lineage.append(by_folder[lineage[-1]["parent"]])
        lineage.reverse()
        record["winner"] = {"member": int(values[MEMBER]), "trial": best[0].trial_id,
                            "score": float(best[0].score),
                            "lineage": [e["trial"] for e in lineage],
                            "rates": [e["rate"] for e in lineage]}
    return record


def replay_overrides(rates: list[float], ready_epochs: int) -> dict[str, Any]:
    """The winner's rates per round as a `piecewise` schedule over epochs."""
    first = float(rates[0])
    if len(rates) == 1:
        return {"learning_rate": first, "schedule": "constant", "schedule_args": {}}
    return {"learning_rate": first, "schedule": "piecewise", "warmup_epochs": 0.0,
            "schedule_args": {
                "at_epochs": [float(ready_epochs * r) for r in range(1, len(rates))],
                "multipliers": [float(rate) / first for rate in rates]}}


def _finite_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def read_record(search_dir: Path) -> dict[str, Any] | None:
    path = Path(search_dir) / "pbt.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
