"""The report's two tables: which metrics, how each image is measured, and mean ± std summaries.

* Table 1, no-reference quality of each enhanced image (:mod:`ssp_keras.metrics`): entropy, average
  gradient (AvG), NIQE and PIQE (:func:`no_reference_metrics`);
* Table 2, fibre segmentation scored against labels: AUC, accuracy, sensitivity, specificity,
  precision (the paper's "FDR" column, see :mod:`ssp_keras.metrics.segmentation`), Dice, G-mean
  and Cohen's kappa.

Standard deviations are over images with ``ddof=0``; undefined values (NaN) are left out of means
and counted in ``count`` (:class:`Summary`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np

#: Table 1 metrics, in the paper's order, with their display names and directions.
TABLE1_METRICS = ("entropy", "average_gradient", "niqe", "piqe")
#: Table 2 metrics: those of :func:`ssp_keras.metrics.segmentation_metrics`, in the paper's order.
TABLE2_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "precision", "dice", "g_mean", "kappa")
METRIC_LABELS = {
    "entropy": "Entropy",
    "average_gradient": "AvG",
    "niqe": "NIQE",
    "piqe": "PIQE",
    "auc": "AUC",
    "accuracy": "ACC",
    "sensitivity": "SEN",
    "specificity": "SPE",
    "precision": "Precision[^precision]",
    "dice": "Dice",
    "g_mean": "G-mean",
    "kappa": "Kappa",
}
LOWER_IS_BETTER = frozenset({"niqe", "piqe"})

PRECISION_FOOTNOTE = (
    'Precision, TP / (TP + FP): the paper\'s "FDR" column, whose values (about 0.97) can only be '
    "1 - false discovery rate, i.e. precision; reported under the name of what it is."
)



# ============================================================================ measuring
class Timer:
    """Accumulates wall-clock seconds and call counts per named step."""

    def __init__(self):
        self.seconds: Dict[str, float] = {}
        self.calls: Dict[str, int] = {}

    def run(self, name: str, function: Callable, *args, **kwargs):
        """``function(*args, **kwargs)``, its duration added to ``name``."""
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.calls[name] = self.calls.get(name, 0) + 1

    def summary(self) -> Dict[str, Dict[str, float]]:
        """``{name: {"calls", "total_s", "mean_ms"}}``."""
        return {
            name: {
                "calls": self.calls[name],
                "total_s": round(seconds, 4),
                "mean_ms": round(1000.0 * seconds / self.calls[name], 3),
            }
            for name, seconds in self.seconds.items()
        }


def no_reference_metrics(image, timer: Optional[Timer] = None) -> Dict[str, float]:
    """Table 1 metrics of one image: ``{"entropy", "average_gradient", "niqe", "piqe"}``.

    Args:
        image: float in [0, 1] or ``uint8``, ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``.
        timer: optional; each metric's time is added under its name.

    Returns:
        Floats; ``niqe`` is NaN for images smaller than 96x96 (NIQE's block size: no complete
        block), and for images without usable block statistics (e.g. constant ones).
    """
    from ssp_keras.metrics import average_gradient, entropy, niqe, piqe, to_luma8
    from ssp_keras.metrics.niqe import NIQE_BLOCK_SIZE

    timer = timer or Timer()
    too_small = min(np.shape(image)[:2]) < NIQE_BLOCK_SIZE
    # Each 8-bit luma once (the metrics take it as it is): PIQE's colour weights are MATLAB rgb2gray's.
    luma = timer.run("luma", to_luma8, image)
    gray = luma if np.ndim(image) == 2 or np.shape(image)[-1] == 1 else None
    return {
        "entropy": timer.run("entropy", entropy, luma),
        "average_gradient": timer.run("average_gradient", average_gradient, luma),
        "niqe": float("nan") if too_small else timer.run("niqe", niqe, luma),
        "piqe": timer.run("piqe", piqe, gray if gray is not None else to_luma8(image, conversion="rgb2gray")),
    }


@dataclasses.dataclass(frozen=True)
class Summary:
    """Mean and standard deviation (``ddof=0``) of the defined values; ``count`` of them."""

    mean: float
    std: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Summary":
        finite = np.asarray([value for value in values if value is not None and math.isfinite(value)], np.float64)
        if finite.size == 0:
            return cls(float("nan"), float("nan"), 0)
        return cls(float(finite.mean()), float(finite.std()), int(finite.size))

    def format(self, digits: int = 4) -> str:
        if self.count == 0:
            return "n/a"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


Table = Dict[str, Dict[str, Summary]]  # method -> metric -> summary
