"""Generated demo data: a toy language pair (each source word has one target word, and
the target reverses the order), in the TranslateFolder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OVERRIDES = {"epochs": 3, "steps_per_epoch": 20, "batch_size": 16}
SOURCE = ["hund", "katze", "haus", "baum", "rot", "blau", "klein", "gross", "sieht", "hat"]
TARGET = ["dog", "cat", "house", "tree", "red", "blue", "small", "big", "sees", "has"]


def write_demo_data(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 600), ("validation", 60), ("test", 60)):
        source_lines, target_lines = [], []
        for _ in range(count):
            words = rng.integers(0, len(SOURCE), size=rng.integers(3, 7))
            source_lines.append(" ".join(SOURCE[w] for w in words))
            target_lines.append(" ".join(TARGET[w] for w in words[::-1]))
        (folder / f"de.{split}.txt").write_text("\n".join(source_lines) + "\n", encoding="utf-8")
        (folder / f"en.{split}.txt").write_text("\n".join(target_lines) + "\n", encoding="utf-8")
    return folder
