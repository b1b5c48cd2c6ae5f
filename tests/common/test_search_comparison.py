"""`lrsuite report --searches`: real toy searches (grid, and grid with median pruning), each
confirmed on 2 seeds, compared on one page whose figures are the searches' own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import cli
from common.confirm_seeds import confirm_search
from common.search_comparison import epochs_to_reach
from common.tuning import run_search
from tests.toy_domain import TOY

FAST = {"monitor_every": 0, "log_lr_every": 0, "steps_per_epoch": 8}
# A planted hopeless rate last: median pruning stops it, plain grid runs it to the end.
SPACE = {"learning_rate": {"values": [0.1, 0.05, 1e-9]}, "schedule": {"values": ["constant"]}}


def read(path: Path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    output = tmp_path_factory.mktemp("searches")
    folders = []
    for name, prune in (("plain", None), ("pruned", "median")):
        search = run_search(TOY, fixed={"output": str(output), **FAST}, tuner="grid",
                            max_trials=3, max_epochs=3, space=SPACE, announce=False,
                            prune=prune, name=name)
        confirm_search(TOY, search.search_dir, 2, announce=False)
        folders.append(search.search_dir)
    return folders


def test_the_table_holds_each_searchs_own_compute_and_confirmation(searches, tmp_path):
    out = tmp_path / "cmp"
    code = cli.main(["report", "--searches", ",".join(map(str, searches)), "--out", str(out)])
    assert code == 0
    rows = read(out / "searches.json")["searches"]
    assert [r["search"] for r in rows] == ["plain", "pruned"]
    for row, folder in zip(rows, searches, strict=True):
        best = read(folder / "best.json")
        confirm = read(folder / "confirm.json")
        assert row["epochs"] == best["compute"]["epochs"]
        assert row["wall_time_s"] == best["compute"]["wall_time_s"]
        assert row["default"] == confirm["metrics"]["val_loss"]["default"]
        assert row["winner_test"] == confirm["metrics"]["test_loss"]["winner"]
        assert row["epochs_to_default"] == epochs_to_reach(
            best["compute"]["anytime"], confirm["metrics"]["val_loss"]["default"]["mean"], "min")
    plain, pruned = rows
    assert plain["tuner"] == "grid" and pruned["tuner"] == "grid + median pruning"
    # Pruning the planted trial after its first epoch saves two of the plain search's epochs.
    assert pruned["trials"]["pruned"] == 1 and plain["trials"]["pruned"] == 0
    assert plain["epochs"] - pruned["epochs"] == 2
    md = (out / "searches.md").read_text()
    assert "| plain | grid |" in md and "| pruned | grid + median pruning |" in md
    assert "searches_anytime.png" in md and (out / "searches_anytime.png").stat().st_size > 0
    assert "<meta name='viewport'" in (out / "searches.html").read_text()


def test_epochs_to_reach_is_the_first_point_at_the_target_in_either_direction():
    anytime = [{"epochs": 2, "best": None}, {"epochs": 4, "best": 0.5},
               {"epochs": 7, "best": 0.3}, {"epochs": 9, "best": 0.3}]
    assert epochs_to_reach(anytime, 0.4, "min") == 7
    assert epochs_to_reach(anytime, 0.5, "min") == 4
    assert epochs_to_reach(anytime, 0.1, "min") is None
    assert epochs_to_reach([{"epochs": 3, "best": 0.6}, {"epochs": 5, "best": 0.8}],
                           0.7, "max") == 5
    assert epochs_to_reach(anytime, None, "min") is None


def test_a_folder_that_is_not_a_finished_search_is_named_in_one_line(searches, tmp_path,
                                                                   capsys):
    empty = tmp_path / "not_a_search"
    empty.mkdir()
    code = cli.main(["report", "--searches", f"{searches[0]},{empty}", "--out",
                     str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and str(empty) in err and "best.json" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written before the check
    assert cli.main(["report", "--searches", str(searches[0])]) == 2
    assert "two or more" in capsys.readouterr().err
