"""Evidence that survives seed noise: summaries over seeds, paired intervals, verdicts.

A comparison of two configurations run on the same seeds is paired: seed s gives both
the same initial weights and the same data order, so the difference per seed removes
most of what the seed alone moves. With n seeds the paired difference gets a Student-t
interval, which is exact for normal differences and honest at n = 3 to 5 (wide, as it
should be); a bootstrap would understate the spread at such n.

Verdicts, from the entry's point of view against its baseline:
- `better` / `worse`: the whole interval lies on one side of zero;
- `within noise`: the interval straddles zero;
- `one seed`: n < 2, no spread to judge by (the difference is shown, not judged).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95
METHOD = (f"paired Student-t {int(CONFIDENCE * 100)}% interval of the per-seed difference "
          "(same seed: same initial weights and data order)")
VERDICTS = ("better", "worse", "within noise", "one seed")


@dataclass(frozen=True)
class Spread:
    """A metric over seeds."""

    mean: float
    sd: float | None  # sample standard deviation; None for one value
    low: float
    high: float
    n: int

    def as_dict(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "min": self.low, "max": self.high,
                "n": self.n}


def spread(values: Sequence[float]) -> Spread | None:
    """Mean, sample sd, min and max of the finite values; None if there are none."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return None
    mean = sum(finite) / len(finite)
    sd = None
    if len(finite) > 1:
        sd = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))
    return Spread(mean, sd, min(finite), max(finite), len(finite))


@dataclass(frozen=True)
class Comparison:
    """An entry against its baseline over the seeds both ran."""

    difference: float  # mean of entry - baseline
    low: float | None  # the interval; None with one seed
    high: float | None
    n: int
    verdict: str

    def as_dict(self) -> dict:
        return {"difference": self.difference, "interval": [self.low, self.high],
                "n": self.n, "verdict": self.verdict, "method": METHOD}


def paired_comparison(entry: dict[int, float], baseline: dict[int, float], *,
                      direction: str = "max", confidence: float = CONFIDENCE
                      ) -> Comparison | None:
    """Compare {seed: value} of an entry with a baseline's, on the seeds both have.

    `direction` says which way the metric improves ("max": higher is better). None
    when no seed is shared."""
    if direction not in ("max", "min"):
        raise ValueError(f"direction must be 'max' or 'min'. Received: {direction!r}")
    seeds = sorted(s for s in entry if s in baseline
                   and _finite(entry[s]) and _finite(baseline[s]))
    if not seeds:
        return None
    diffs = [float(entry[s]) - float(baseline[s]) for s in seeds]
    n = len(diffs)
    mean = sum(diffs) / n
    if n < 2:
        return Comparison(mean, None, None, n, "one seed")
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if low > 0 or high < 0:
        improves = (low > 0) == (direction == "max")
        verdict = "better" if improves else "worse"
    else:
        verdict = "within noise"
    return Comparison(mean, low, high, n, verdict)


def compare_with_divergences(entry: dict[int, float], baseline: dict[int, float], *,
                             entry_diverged: Sequence[int] = (),
                             baseline_diverged: Sequence[int] = (),
                             direction: str = "max") -> dict | None:
    """`paired_comparison` as a dict, where a divergence counts: it is the worst result on
    its seed, not a missing one. An entry that diverged on a seed where the baseline finished
    is worse (better where only the baseline diverged), whatever the interval over the
    other seeds says; the dict then lists those seeds. None when nothing is comparable."""
    result = paired_comparison(entry, baseline, direction=direction)
    versus = result.as_dict() if result else None
    lost = sorted(seed for seed in entry_diverged if seed in baseline)
    won = sorted(seed for seed in baseline_diverged if seed in entry)
    if not lost and not won:
        return versus
    versus = versus or {"difference": None, "interval": [None, None], "n": 0, "method": METHOD}
    versus.update(diverged_seeds=lost, baseline_diverged_seeds=won)
    if bool(lost) != bool(won):
        versus["verdict"] = "worse" if lost else "better"
    versus.setdefault("verdict", "not judged")  # each lost a seed, and none is shared
    return versus


def divergence_text(versus: dict, baseline: str) -> str:
    """A comparison decided (or coloured) by divergences, in words."""
    parts = []
    if versus["difference"] is not None:
        low, high = versus["interval"]
        shown = f" [{low:+.4g}, {high:+.4g}]" if low is not None else ""
        parts.append(f"{versus['difference']:+.4g}{shown} on the seeds both finished;")
    for key, who in (("diverged_seeds", "diverged"), ("baseline_diverged_seeds",
                                                     f"{baseline} diverged")):
        if versus.get(key):
            parts.append(f"{who} on seed {', '.join(map(str, versus[key]))}:")
    return " ".join(parts + [versus["verdict"]])


def majority(verdicts: Sequence[str]) -> tuple[str, int, int]:
    """The most common verdict, its count and the total (ties: the first seen wins)."""
    if not verdicts:
        return ("-", 0, 0)
    counts = Counter(verdicts)
    top = max(counts.values())
    winner = next(v for v in verdicts if counts[v] == top)
    return winner, top, len(verdicts)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(float(value))


def parse_seeds(text: str | None, base_seed: int) -> list[int]:
    """`--seeds`: a count N (the base seed and the N - 1 after it) or seeds joined by ','.
    None means the base seed alone."""
    if text is None or not str(text).strip():
        return [base_seed]
    text = str(text).strip()
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = [base_seed + i for i in range(count)]
    except ValueError:
        raise ValueError(f"--seeds must be a count >= 1 (e.g. 3) or seeds joined by ',' "
                         f"(e.g. 42,7,1). Received: --seeds {text!r}") from None
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"--seeds must list each seed once. Received: --seeds {text!r}")
    return seeds
