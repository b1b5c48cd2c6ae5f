"""Generated demo data: short reviews whose label is carried by a few polar words."""

from __future__ import annotations

from pathlib import Path

import numpy as np

POSITIVE = ["good", "great", "wonderful", "superb", "moving", "fun", "brilliant", "charming"]
NEGATIVE = ["bad", "awful", "boring", "dull", "tedious", "weak", "clumsy", "lifeless"]
FILLER = ["the", "film", "is", "a", "plot", "story", "acting", "and", "with", "movie", "cast"]
OVERRIDES = {"epochs": 3, "steps_per_epoch": 20, "batch_size": 16}


def write_demo_data(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 800), ("test", 200)):
        lines = ["text\tlabel"]
        for i in range(count):
            label = i % 2
            polar = POSITIVE if label else NEGATIVE
            words = list(rng.choice(FILLER, size=6)) + list(rng.choice(polar, size=2))
            rng.shuffle(words)
            lines.append(f"{' '.join(words)}\t{label}")
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
