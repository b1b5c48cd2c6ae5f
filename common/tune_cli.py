"""`lrsuite tune DOMAIN`: a Keras Tuner search whose trials are ordinary training runs.

Distributed: run the same command three times with KERASTUNER_ORACLE_IP,
KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID=chief (the oracle), tuner0, tuner1 (the
workers that train); see `common.tuning`.
"""

from __future__ import annotations

import json
from pathlib import Path

from common import confirm_seeds
from common.cli_domain import (
    build_config,
    domain_parser,
    given_config_values,
    print_view_hint,
    split_domain,
)
from common.errors import UserError


def read_space_file(path: str | None) -> dict:
    if path is None:
        return {}
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: --space file not found. Give a JSON file such as "
                        '{"learning_rate": {"min": 1e-4, "max": 1e-1}}.')
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: not valid JSON ({error.msg}).") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; --space takes a JSON file.") from None


def cmd_tune(argv: list[str]) -> int:
    from common.tuning import TUNERS, run_search

    name, rest = split_domain("tune", argv)
    domain, parser = domain_parser("tune", name)
    group = parser.add_argument_group("search")
    group.add_argument("--tuner", default="hyperband",
                       help=f"search algorithm: {', '.join(TUNERS)} (default hyperband)")
    group.add_argument("--max-trials", type=int, default=None,
                       help="trials at most (default 10; hyperband: every bracket)")
    group.add_argument("--max-epochs", type=int, default=None,
                       help="epochs per trial; hyperband: of its longest trials "
                       "(default: the config's --epochs)")
    group.add_argument("--factor", type=int, default=3, help="hyperband reduction factor")
    group.add_argument("--name", default=None,
                       help="search folder under <output>/<domain>/tuning/ (default: the "
                       "tuner's name); re-run the same command to resume")
    group.add_argument("--folds", type=int, default=1,
                       help="score each trial by K-fold cross-validation of the training "
                       "split (K times the cost; default 1: the validation split)")
    group.add_argument("--space", default=None, metavar="FILE",
                       help='JSON overrides of bounds and choices, e.g. {"learning_rate": '
                       '{"min": 1e-4, "max": 1e-2}, "optimizer": {"values": ["adam"]}}')
    group.add_argument("--lr-range-test", action="store_true",
                       help="search the rate from a tenth to ten times the LR range test's "
                       "suggestion (run once, kept in the search folder)")
    group.add_argument("--confirm-seeds", type=confirm_seeds.seed_count, default=0, metavar="K",
                       help="after the search, retrain the winner and the default config on "
                       "K seeds each and write confirm.md (K >= 2; default 0: off)")
    group.add_argument("--prune", default=None, choices=("median", "asha"),
                       help="stop weak trials early (random, grid, bayesian): median of the "
                       "trials at the same epoch, or ASHA rungs keeping the top 1/factor")
    group.add_argument("--population", type=int, default=None, metavar="P",
                       help="pbt: members trained side by side (>= 2)")
    group.add_argument("--ready-epochs", type=int, default=None, metavar="K",
                       help="pbt: epochs between rankings; the weakest copy a strong "
                       "member's weights and perturb its rate")
    group.add_argument("--rounds", type=int, default=None, metavar="R",
                       help="pbt: rounds of K epochs (default: --max-epochs // K)")
    namespace = parser.parse_args(rest)
    if namespace.tuner not in TUNERS:
        raise UserError(f"unknown tuner {namespace.tuner!r}. Expected one of: "
                        f"{', '.join(TUNERS)}")
    _, cfg = build_config(domain, parser, rest)  # splits the CPU before data is loaded
    fixed = given_config_values(cfg, namespace)  # kept for every trial, in search.json
    max_trials = namespace.max_trials
    if max_trials is None and namespace.tuner not in ("hyperband", "pbt"):
        max_trials = 10
    result = run_search(
        domain, fixed=fixed, tuner=namespace.tuner, name=namespace.name,
        max_trials=max_trials, max_epochs=namespace.max_epochs, folds=namespace.folds,
        space=read_space_file(namespace.space), smoke=namespace.smoke,
        factor=namespace.factor, lr_range_test=namespace.lr_range_test,
        prune=namespace.prune, population=namespace.population,
        ready_epochs=namespace.ready_epochs, rounds=namespace.rounds)
    confirm_seeds.confirm_after_search(domain, namespace.confirm_seeds, result)
    print_view_hint(result.search_dir)  # the HParams tab compares the trials
    return 0 if result.best is not None or not result.records else 1
