"""Matplotlib on the Agg backend (no display needed), and the one way the suite saves a figure."""
from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot, imported late so that commands without plots never load it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | Path, dpi: int = 100) -> Path:
    """Lay out `figure`, write it to `path` (folders made as needed), close it, return the path.
    Closing matters: a sweep draws hundreds of figures in one process."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi)
    pyplot().close(figure)
    return path
