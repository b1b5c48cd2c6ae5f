"""`lrsuite schedules plot NAME [KEY=VALUE ...]`: a PNG of a schedule's rate over training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.cli_args import OneLineParser
from common.errors import UserError
from common.figures import pyplot, save_figure
from common.schedule_registry import build_schedule, parse_assignments
from common.schedules import rate_at


def schedule_curve(name: str, learning_rate: float, epochs: int, steps_per_epoch: int,
                   warmup_epochs: float = 0.0, args: dict | None = None) -> np.ndarray:
    """The rate at every step of a run, as an array (plateau: its starting rate)."""
    plan = build_schedule(name, learning_rate, steps_per_epoch=steps_per_epoch, epochs=epochs,
                          warmup_epochs=warmup_epochs, args=args)
    return np.array([rate_at(plan.learning_rate, s) for s in range(epochs * steps_per_epoch)])


def plot_curves(curves: dict[str, np.ndarray], steps_per_epoch: int, path: Path, title: str) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    for label, curve in curves.items():
        axis.plot(np.arange(len(curve)) / steps_per_epoch, curve, label=label, lw=1.6)
    axis.set_xlabel("epoch")
    axis.set_ylabel("learning rate")
    axis.set_title(title, fontsize=9)
    if len(curves) > 1:
        axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    return save_figure(figure, path, dpi=110)


def plot_schedule_command(argv: list[str]) -> int:
    parser = OneLineParser(prog="lrsuite schedules plot",
                           description="Write a PNG of a schedule's learning rate over training.")
    parser.add_argument("name", help="schedule name (see 'lrsuite schedules')")
    parser.add_argument("params", nargs="*", metavar="KEY=VALUE", help="schedule parameters")
    parser.add_argument("--lr", type=float, default=0.1, help="peak rate (default 0.1)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default 10)")
    parser.add_argument("--steps-per-epoch", type=int, default=100, help="default 100")
    parser.add_argument("--warmup-epochs", type=float, default=0.0, help="default 0")
    parser.add_argument("--out", default=None, help="PNG path (default schedule-NAME.png)")
    ns = parser.parse_args(argv)
    try:
        args = parse_assignments(ns.params)
        curve = schedule_curve(ns.name, ns.lr, ns.epochs, ns.steps_per_epoch,
                               ns.warmup_epochs, args)
    except ValueError as error:
        raise UserError(f"schedule {ns.name!r}: {error}") from None
    out = Path(ns.out or f"schedule-{ns.name}.png")
    params = ", ".join(ns.params) or "defaults"
    title = (f"{ns.name} ({params}); lr {ns.lr:g}, {ns.epochs} epochs x {ns.steps_per_epoch} "
             f"steps, warmup {ns.warmup_epochs:g} epochs")
    plot_curves({ns.name: curve}, ns.steps_per_epoch, out, title)
    print(f"wrote {out} (rate from {curve[0]:.3g} to {curve[-1]:.3g}, peak {curve.max():.3g})")
    return 0
