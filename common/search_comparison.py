"""`lrsuite report --searches A,B,...`: several finished searches side by side.

Each search's own report already holds its compute (common.search_compute) and, with
`--confirm-seeds`, its winner retrained against the default on the same seeds
(common.confirm_seeds). This puts them on one page, so that tuners run on the same domain
and data can be compared on what they spent and what they bought:

- a table: trials per status, epochs and wall time spent, the best objective the search
  saw, the winner's and the default's retrained objective and test metric (mean ± sd over
  seeds) with the paired verdict, and the epochs each search had spent when its best
  trial first reached the default's retrained objective;
- one anytime curve per search (best objective so far against cumulative epochs) on one
  plot, the default's retrained mean drawn as a line.

Written to `searches.json`, `searches.md`, `searches.html` and `searches_anytime.png` in
`--out` (default: the first search's parent folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.errors import UserError
from common.figures import pyplot, save_figure
from common.report_render import Block, render_html, render_markdown
from common.runs import read_json, write_json


def load_search(search_dir: Path) -> dict[str, Any]:
    """best.json of a finished search, checked to hold what the comparison reads."""
    path = Path(search_dir) / "best.json"
    if not path.is_file():
        raise UserError(f"{search_dir}: no best.json; pass the folder of a finished search "
                        "(runs/<domain>/tuning/<name>).")
    best = read_json(path)
    if "compute" not in best:
        raise UserError(f"{path}: no 'compute' entry (written by searches since the compute "
                        "report); run the search again with the same --name to rewrite it.")
    return best


def epochs_to_reach(anytime: list[dict[str, Any]], target: float | None,
                    direction: str) -> int | None:
    """Epochs spent when the best-so-far first reached `target` (None: never, or no target)."""
    if target is None:
        return None
    for point in anytime:
        best = point.get("best")
        if best is not None and (best >= target if direction == "max" else best <= target):
            return int(point["epochs"])
    return None


def _metric(confirmation: dict[str, Any] | None, metric: str, arm: str) -> dict | None:
    if not confirmation:
        return None
    return (confirmation.get("metrics", {}).get(metric) or {}).get(arm)


def search_row(search_dir: Path, best: dict[str, Any]) -> dict[str, Any]:
    """One search's figures for the comparison."""
    compute = best["compute"]
    prune = best.get("prune")
    if prune is None and (Path(search_dir) / "search.json").is_file():
        prune = read_json(Path(search_dir) / "search.json").get("prune")
    objective, direction = best["objective"], best.get("direction", "max")
    test_metric = "test_" + objective.removeprefix("val_")
    confirmation = best.get("confirmation")
    default = _metric(confirmation, objective, "default")
    target = default["mean"] if default else None
    return {
        "search": Path(search_dir).name,
        "search_dir": str(search_dir),
        "tuner": best["tuner"] + (f" + {prune} pruning" if prune else ""),
        "objective": objective,
        "direction": direction,
        "trials": {status: row["trials"] for status, row in compute["by_status"].items()},
        "epochs": compute["epochs"],
        "wall_time_s": compute["wall_time_s"],
        "best_trial_score": best.get("score"),
        "winner": _metric(confirmation, objective, "winner"),
        "default": default,
        "winner_test": _metric(confirmation, test_metric, "winner"),
        "default_test": _metric(confirmation, test_metric, "default"),
        "winner_minus_default": _metric(confirmation, objective, "winner_minus_default"),
        "confirm_epochs": (confirmation or {}).get("epochs"),
        "seeds": (confirmation or {}).get("seeds"),
        "epochs_to_default": epochs_to_reach(compute["anytime"], target, direction),
        "anytime": [p for p in compute["anytime"] if p.get("best") is not None],
    }


def _spread(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    sd = f" ± {entry['sd']:.3f}" if entry.get("sd") is not None else ""
    return f"{entry['mean']:.4f}{sd}"


def _verdict(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    if entry.get("difference") is None:
        return entry.get("verdict", "-")
    low, high = entry.get("interval") or (None, None)
    interval = f" [{low:+.3f}, {high:+.3f}]" if low is not None else ""
    return f"{entry['difference']:+.4f}{interval} {entry['verdict']}"


def _trials_text(trials: dict[str, int]) -> str:
    return ", ".join(f"{count} {status}" for status, count in trials.items() if count)


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    objective = rows[0]["objective"]
    test = "test_" + objective.removeprefix("val_")
    header = ["search", "tuner", "trials", "epochs", "wall time (s)",
              f"best trial {objective}", f"winner {objective}, retrained",
              f"default {objective}", "winner - default [95%]", f"winner {test}",
              f"default {test}", "epochs to reach the default"]
    table = [header]
    for row in rows:
        reached = row["epochs_to_default"]
        table.append([
            row["search"], row["tuner"], _trials_text(row["trials"]), str(row["epochs"]),
            f"{row['wall_time_s']:.0f}",
            f"{row['best_trial_score']:.4f}" if row["best_trial_score"] is not None else "-",
            _spread(row["winner"]), _spread(row["default"]), _verdict(row["winner_minus_default"]),
            _spread(row["winner_test"]), _spread(row["default_test"]),
            str(reached) if reached is not None else
            ("not reached" if row["default"] else "- (no --confirm-seeds)"),
        ])
    return table


def plot_anytime(rows: list[dict[str, Any]], path: Path) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        points = row["anytime"]
        if points:
            xs = [p["epochs"] for p in points] + [row["epochs"]]
            ys = [p["best"] for p in points] + [points[-1]["best"]]
            axes.step(xs, ys, where="post", label=f"{row['search']} ({row['tuner']})")
    defaults = [row["default"]["mean"] for row in rows if row["default"]]
    if defaults:
        axes.axhline(sum(defaults) / len(defaults), color="grey", linestyle="--",
                     label="default, retrained (mean)")
    axes.set_xlabel("cumulative epochs spent by the search")
    axes.set_ylabel(f"best {rows[0]['objective']} so far")
    axes.set_title("anytime curves")
    axes.legend(fontsize="small")
    return save_figure(figure, path)


def compare_searches(search_dirs: list[Path], out_dir: Path | None = None
                     ) -> tuple[Path, Path]:
    """Write the comparison; returns (markdown, html)."""
    if len(search_dirs) < 2:
        raise UserError("--searches needs two or more search folders, comma-separated.")
    loaded = [(Path(d), load_search(Path(d))) for d in search_dirs]
    objectives = {best["objective"] for _, best in loaded}
    if len(objectives) > 1:
        listed = ", ".join(f"{d}: {best['objective']}" for d, best in loaded)
        raise UserError(f"--searches: the searches optimise different objectives ({listed}); "
                        "compare searches of one domain.")
    rows = [search_row(d, best) for d, best in loaded]
    out_dir = Path(out_dir) if out_dir else loaded[0][0].parent
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "searches.json", {"searches": rows})
    plot = plot_anytime(rows, out_dir / "searches_anytime.png")
    better = "higher" if rows[0]["direction"] == "max" else "lower"
    reached = [r for r in rows if r["epochs_to_default"] is not None]
    cheapest = min(reached, key=lambda r: r["epochs_to_default"]) if reached else None
    summary = (f"Reached the default's retrained {rows[0]['objective']} with the fewest epochs: "
               f"{cheapest['search']} ({cheapest['epochs_to_default']} epochs)."
               if cheapest else "No search's best trial reached the default's retrained "
               f"{rows[0]['objective']} (or no search was confirmed with --confirm-seeds).")
    blocks = [
        Block("h1", "Searches compared: what each spent and what it bought"),
        Block("text", f"{rows[0]['objective']}: {better} is better. Epochs and wall time are "
                      "the search's own (retraining for the confirmation is not counted). "
                      "'Winner' and 'default' are retrained on the confirmation's seeds "
                      "(mean ± sd); the interval is paired by seed. 'Epochs to reach the "
                      "default': cumulative epochs when the search's best trial first reached "
                      "the default's retrained mean."),
        Block("table", table_rows(rows)),
        Block("text", summary),
        Block("image", plot, "Best objective so far against the epochs each search spent."),
    ]
    md = out_dir / "searches.md"
    md.write_text(render_markdown(blocks, out_dir), encoding="utf-8")
    page = out_dir / "searches.html"
    page.write_text(render_html(blocks, "lr-suite: searches compared"), encoding="utf-8")
    return md, page
