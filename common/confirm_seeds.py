"""`lrsuite tune ... --confirm-seeds K`: is the search's winner better than the default
beyond seed noise?

After a search, the winner (the best trial's values, retrained as `lrsuite train
--from-best` does) and the domain's default config are trained on the same K seeds, each
arm for the search's longest budget (`max_epochs`, so that both see the epochs the winner
was chosen on) with the config's own early stopping. Seed s pairs the two arms (same
initial weights and data order), so the per-seed difference gets a paired interval
(common.evidence).

Layout, inside the search folder:
    confirm/<winner|default>/seed-<s>/   one ordinary run directory per arm and seed
    confirm.json, confirm.md, confirm.html   the comparison
    best.json                            gains a `confirmation` entry (the same figures)

Re-running reuses every finished seed (common.resumable.run_or_resume).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.domain import Domain
from common.errors import UserError
from common.evidence import METHOD, compare_with_divergences, divergence_text, parse_seeds, spread
from common.report_render import Block, render_html, render_markdown
from common.resumable import run_or_resume
from common.runs import read_json, write_json
from common.search_space import make_config
from common.sweep import objective_value
from common.trial_store import config_overrides_from_best

ARMS = ("winner", "default")
# Left out when a stored run's config is compared with the wanted one.
RUN_ONLY_FIELDS = ("run_name", "resume", "requested_learning_rate")


def seed_count(text: str) -> int:
    """`--confirm-seeds`: 0 (off) or a count >= 2 (one seed has no spread to judge by)."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count == 0 or count >= 2:
        return count
    raise UserError(f"--confirm-seeds must be 0 (off) or a count >= 2 of seeds to retrain the "
                    f"winner and the default on. Received: --confirm-seeds {text}")


def test_metric_name(objective: str) -> str:
    """The test split's counterpart of the validation objective (val_loss -> test_loss)."""
    return "test_" + objective.removeprefix("val_")


def arm_configs(domain: Domain, search_dir: Path) -> dict[str, Any]:
    """The winner's and the default's config, at the search's longest budget."""
    best = read_json(search_dir / "best.json")
    smoke = bool(best.get("smoke"))
    budget = {"epochs": best["max_epochs"], "verbose": 0}
    winner_values = {**config_overrides_from_best(search_dir), **budget}
    default_values = {**config_overrides_from_best_fixed(best), **budget}
    try:
        return {"winner": make_config(domain, winner_values, smoke),
                "default": make_config(domain, default_values, smoke)}
    except ValueError as error:
        raise UserError(f"{search_dir}/best.json: {error}") from None


def config_overrides_from_best_fixed(best: dict[str, Any]) -> dict[str, Any]:
    """The flags the search was run with (data, batch size...), without the searched
    values: the default config as the user would train it without tuning. JSON lists
    become tuples, as configs hold sequences."""
    def as_tuples(value: Any) -> Any:
        return tuple(as_tuples(v) for v in value) if isinstance(value, list) else value

    return {k: as_tuples(v) for k, v in best.get("fixed", {}).items()}


def _same_config(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def plain(values):
        kept = {k: v for k, v in values.items() if k not in RUN_ONLY_FIELDS}
        return json.loads(json.dumps(kept, sort_keys=True, default=str))

    return plain(stored) == plain(wanted)


def _data_key(cfg) -> str:
    from common.tuning import TRAINING_ONLY_FIELDS

    return json.dumps({k: v for k, v in cfg.to_dict().items() if k not in TRAINING_ONLY_FIELDS},
                      sort_keys=True, default=str)


def run_arms(domain: Domain, search_dir: Path, seeds: list[int]
             ) -> tuple[dict[str, dict[int, dict[str, Any]]], int]:
    """({arm: {seed: summary}}, how many runs were reused) for both arms on `seeds`."""
    configs = arm_configs(domain, search_dir)
    runs: dict[str, dict[int, dict[str, Any]]] = {arm: {} for arm in ARMS}
    reused_count = 0
    for seed in seeds:
        bundles: dict[str, Any] = {}  # one data set per seed; arms with the same data share it
        for arm in ARMS:
            cfg = configs[arm].replace(seed=seed)
            key = _data_key(cfg)
            if key not in bundles:
                bundles.clear()
                bundles[key] = domain.load_data(cfg)
            wanted = cfg.to_dict()
            summary, reused = run_or_resume(
                domain, cfg, search_dir / "confirm" / arm, f"seed-{seed}", bundle=bundles[key],
                same_config=lambda stored, wanted=wanted: _same_config(stored, wanted))
            if summary.get("status") == "interrupted":
                raise KeyboardInterrupt
            runs[arm][seed] = summary
            reused_count += reused
    return runs, reused_count


def _values(runs: dict[int, dict[str, Any]], key: str) -> dict[int, float]:
    return {seed: v for seed, s in runs.items() if (v := objective_value(s, key)) is not None}


def compare_arms(domain: Domain, runs: dict[str, dict[int, dict[str, Any]]],
                 seeds: list[int], epochs: int, early_stopping: int = 0) -> dict[str, Any]:
    """confirm.json's content: per arm and metric the spread, and winner - default."""
    metrics = [domain.objective]
    test_metric = test_metric_name(domain.objective)
    if any(test_metric in s for arm in runs.values() for s in arm.values()):
        metrics.append(test_metric)
    result: dict[str, Any] = {
        "objective": domain.objective, "direction": domain.direction, "seeds": seeds,
        "epochs": epochs, "early_stopping": early_stopping, "method": METHOD, "metrics": {},
        "arms": {arm: {"run_dirs": [runs[arm][s]["run_dir"] for s in seeds],
                       "statuses": [runs[arm][s]["status"] for s in seeds]} for arm in ARMS},
    }
    for metric in metrics:
        values = {arm: _values(runs[arm], metric) for arm in ARMS}
        over = {arm: spread(list(values[arm].values())) for arm in ARMS}
        diverged = {arm: [s for s in seeds if runs[arm][s].get("status") == "diverged"]
                    for arm in ARMS}
        result["metrics"][metric] = {
            **{arm: over[arm].as_dict() if over[arm] else None for arm in ARMS},
            "winner_minus_default": compare_with_divergences(
                values["winner"], values["default"], entry_diverged=diverged["winner"],
                baseline_diverged=diverged["default"], direction=domain.direction),
        }
    return result


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "-"


def _spread_text(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "no finished run"
    sd = f" ± {entry['sd']:.2g}" if entry["sd"] is not None else ""
    return f"{entry['mean']:.4g}{sd} [{_num(entry['min'])}, {_num(entry['max'])}], n={entry['n']}"


def _difference_text(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "no seed with both arms finished"
    if entry.get("diverged_seeds") or entry.get("baseline_diverged_seeds"):
        return divergence_text(entry, "default")
    low, high = entry["interval"]
    interval = f" [{low:.3g}, {high:.3g}]" if low is not None else ""
    return f"{entry['difference']:.3g}{interval}, n={entry['n']}: {entry['verdict']}"


def result_line(result: dict[str, Any]) -> str:
    objective = result["objective"]
    entry = result["metrics"][objective]
    return (f"confirmation over seeds {', '.join(map(str, result['seeds']))}: {objective} "
            f"winner {_spread_text(entry['winner'])} vs default {_spread_text(entry['default'])}; "
            f"winner - default {_difference_text(entry['winner_minus_default'])}")


def write_confirmation(search_dir: Path, result: dict[str, Any]) -> Path:
    """confirm.json, confirm.md, confirm.html and best.json's `confirmation`; returns the .md."""
    write_json(search_dir / "confirm.json", result)
    better = "lower" if result["direction"] == "min" else "higher"
    patience = result.get("early_stopping")
    stopping = (f"early stopping after {patience} epochs without progress (the config's)"
                if patience else "no early stopping (the config's)")
    rows = [["metric", "winner: mean ± sd [min, max], n", "default: mean ± sd [min, max], n",
             "winner - default [95% interval], n: verdict"]]
    for metric, entry in result["metrics"].items():
        rows.append([metric, _spread_text(entry["winner"]), _spread_text(entry["default"]),
                     _difference_text(entry["winner_minus_default"])])
    blocks = [
        Block("h1", "Does the search's winner beat the default beyond seed noise?"),
        Block("text", f"Both arms trained {result['epochs']} epochs (the search's longest "
                      f"budget) on seeds {', '.join(map(str, result['seeds']))}, "
                      f"{stopping}; {result['objective']}: {better} is better. "
                      f"Runs: confirm/winner/seed-<s>, confirm/default/seed-<s>."),
        Block("table", rows),
        Block("text", f"Method: {result['method']}. Verdicts: better / worse when the whole "
                      "interval lies on one side of zero, within noise otherwise."),
    ]
    md = search_dir / "confirm.md"
    md.write_text(render_markdown(blocks, search_dir), encoding="utf-8")
    (search_dir / "confirm.html").write_text(
        render_html(blocks, "lr-suite: search winner against the default"), encoding="utf-8")
    best = read_json(search_dir / "best.json")
    best["confirmation"] = {k: result[k] for k in ("seeds", "epochs", "method", "metrics")}
    write_json(search_dir / "best.json", best)
    return md


def confirm_search(domain: Domain, search_dir: Path, count: int, *,
                   announce: bool = True) -> dict[str, Any] | None:
    """Retrain the winner and the default on `count` seeds and write the comparison.
    None when the search has no winner (no best.json)."""
    if not (search_dir / "best.json").exists():
        if announce:
            print("no winner to confirm: no trial completed.", flush=True)
        return None
    configs = arm_configs(domain, search_dir)
    seeds = parse_seeds(str(count), configs["default"].seed)
    if announce:
        print(f"confirming: winner and default on {count} seeds each "
              f"({configs['default'].epochs} epochs)", flush=True)
    runs, reused = run_arms(domain, search_dir, seeds)
    result = compare_arms(domain, runs, seeds, configs["default"].epochs,
                          configs["default"].early_stopping)
    result["reused_runs"] = reused
    md = write_confirmation(search_dir, result)
    if announce:
        print(f"{result_line(result)} ({reused} of {2 * count} runs reused) -> {md}", flush=True)
    return result


def confirm_after_search(domain: Domain, count: int, result) -> None:
    """The tune command's hook: confirm unless off (0) or this process is a worker."""
    from common.tuners import process_role

    if count and process_role() != "worker":
        confirm_search(domain, Path(result.search_dir), count)
