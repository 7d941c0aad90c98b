"""Spike detection: is this period's count far above the series' own recent baseline?

A robust z-score is used instead of mean and standard deviation, so that one earlier spike in
the baseline does not hide the next one:

    z = (current - median(baseline)) / scale,  scale = max(1.4826 * MAD(baseline), sqrt(median), 1)

MAD is the median absolute deviation; 1.4826 * MAD estimates the standard deviation of normal
data. The floor sqrt(median) is the Poisson noise of a count (a flat baseline has MAD 0, and
7 → 9 tickets is not a spike). A period is flagged when z >= Z_THRESHOLD and the count is at
least MIN_COUNT (three tickets are never a spike, whatever their baseline). Pure Python.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from typing import Hashable, Mapping, Sequence

Z_THRESHOLD = 3.5
MIN_COUNT = 5
BASELINE_PERIODS = 8
MIN_BASELINE_PERIODS = 3

EXPLANATION_JA = (
    "急増の判定：各系列（カテゴリ・ロールなど）について、今期の件数を直前{n}期間の件数と比べます。"
    "平均ではなく中央値と中央絶対偏差（MAD）を使うため、過去の一時的な急増に引きずられません。"
    "ロバストzスコア ＝（今期の件数 − 中央値）÷ 尺度、尺度 ＝ max(1.4826 × MAD, √中央値, 1)。"
    "zスコアが{z}以上、かつ今期の件数が{m}件以上のとき「急増」と表示します。"
)
EXPLANATION_EN = (
    "Spike rule: for each series (category, role, …) this period's count is compared with the previous "
    "{n} periods. The median and the median absolute deviation (MAD) are used instead of the mean, so an "
    "earlier one-off spike does not hide the next one. Robust z = (count − median) ÷ scale, where "
    "scale = max(1.4826 × MAD, √median, 1). A series is flagged when z ≥ {z} and the count is at least {m}."
)


def explanation(lang: str = "ja", *, z: float = Z_THRESHOLD, min_count: int = MIN_COUNT,
                baseline: int = BASELINE_PERIODS) -> str:
    """Return the rule in words, with the constants filled in."""
    text = EXPLANATION_EN if lang == "en" else EXPLANATION_JA
    return text.format(n=baseline, z=z, m=min_count)


@dataclass
class Spike:
    """The decision for one series and the numbers behind it."""

    key: Hashable
    current: int
    baseline: list[int] = field(default_factory=list)
    median: float = 0.0
    mad: float = 0.0
    scale: float = 1.0
    z: float = 0.0
    flagged: bool = False
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def robust_z(current: float, baseline: Sequence[float]) -> tuple[float, float, float, float]:
    """Return (z, median, MAD, scale) of `current` against `baseline`."""
    med = statistics.median(baseline)
    mad = statistics.median(abs(x - med) for x in baseline)
    scale = max(1.4826 * mad, math.sqrt(med) if med > 0 else 0.0, 1.0)
    return (current - med) / scale, med, mad, scale


def evaluate(key: Hashable, counts: Sequence[int], *, z_threshold: float = Z_THRESHOLD,
             min_count: int = MIN_COUNT, baseline_periods: int = BASELINE_PERIODS) -> Spike:
    """Judge the last value of `counts` against the `baseline_periods` values before it."""
    if not counts:
        return Spike(key, 0, reason="no data")
    current = int(counts[-1])
    baseline = [int(c) for c in counts[:-1][-baseline_periods:]]
    if len(baseline) < MIN_BASELINE_PERIODS:
        return Spike(key, current, baseline, reason="baseline too short")
    z, med, mad, scale = robust_z(current, baseline)
    spike = Spike(key, current, baseline, round(med, 3), round(mad, 3), round(scale, 3), round(z, 2))
    if current < min_count:
        spike.reason = f"count {current} < {min_count}"
    elif z < z_threshold:
        spike.reason = f"z {z:.2f} < {z_threshold}"
    else:
        spike.flagged = True
        spike.reason = f"z {z:.2f} >= {z_threshold}, count {current} >= {min_count}"
    return spike


def detect_spikes(series: Mapping[Hashable, Sequence[int]], **options) -> list[Spike]:
    """Evaluate every series; flagged ones first, then by z-score (highest first)."""
    results = [evaluate(key, counts, **options) for key, counts in series.items()]
    results.sort(key=lambda s: (not s.flagged, -s.z, str(s.key)))
    return results
