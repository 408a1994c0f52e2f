"""The enhancement quality benchmark's protocol (``benchmarks/quality.py``): planted degradations,
what share of them an enhancer takes away, summaries and the targets an enhancer must meet.

Illumination, on real frames (no clean image):

* :func:`planted_vignette`: a fixed, smooth, off-centre vignette to multiply into a frame, and
  :func:`shading_removed`: which share of the non-uniformity it added an enhancer takes away
  (`ssp_keras.metrics.illumination.non_uniformity`);
* :func:`exposure_matched`: an output at its input's exposure, for exposure-sensitive scores.

Restoration, on real frames with a planted degradation (issue #21), scored against the plain frame
with the full-reference measures of `ssp_keras.metrics.full_reference`:

* :func:`planted_degradation`: random off-centre shading and a ramp, Gaussian blur, contrast loss
  and Poisson-Gaussian noise, drawn from a seeded generator (the benchmark's fixed protocol);
* :func:`share_given_back`: the share of a score lost to the degradation that a restorer gives back.

:func:`summarize` gives mean, std (``ddof=0``) and count over images, ignoring NaN;
:func:`target_checks` and :func:`restoration_checks` say whether a method meets the targets.

The measures this module held before (PSNR, SSIM, detail measures, non-uniformity, border band) are
re-exported from here for one release; import them from `ssp_keras.metrics.full_reference` and
`ssp_keras.metrics.illumination`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Dict, Iterable, Sequence, Tuple

import cv2
import numpy as np

from ssp_keras.errors import InputError
from ssp_keras.evaluation.tables import Summary
from ssp_keras.metrics.full_reference import (  # noqa: F401  (re-exported for one release)
    DETAIL_PSNR_SIGMA,
    DETAIL_SIGMA,
    SSIM_K1,
    SSIM_K2,
    SSIM_SIGMA,
    SSIM_WINDOW,
    detail_correlation,
    detail_psnr,
    fine_detail,
    matched_ssim,
    pearson,
    psnr,
    ssim,
    ssim_map,
)
from ssp_keras.metrics.illumination import (  # noqa: F401  (re-exported for one release)
    BORDER_INNER,
    BORDER_OUTER,
    DEFAULT_BLOCK,
    block_means,
    border_band,
    non_uniformity,
)

#: :func:`planted_vignette`: centre (fractions of height and width), depth and radius.
VIGNETTE_CENTRE = (0.3, 0.65)
VIGNETTE_STRENGTH = 0.6
VIGNETTE_RADIUS = 0.75  # of the half-diagonal
#: :func:`planted_degradation`'s ranges (each drawn uniformly per image).
PLANTED_SHADING = (0.3, 0.5)  # vignette depth
PLANTED_RAMP = (0.1, 0.3)  # linear ramp strength
PLANTED_BLUR_SIGMA = (1.2, 2.0)  # pixels
PLANTED_CONTRAST = (0.7, 0.9)  # factor around the mean
PLANTED_SHOT_NOISE = (0.02, 0.035)  # std at mid-grey
PLANTED_READ_NOISE = 0.005


# ------------------------------------------------------------------------------ illumination
def planted_vignette(
    shape: Sequence[int],
    centre: Tuple[float, float] = VIGNETTE_CENTRE,
    strength: float = VIGNETTE_STRENGTH,
    radius: float = VIGNETTE_RADIUS,
) -> np.ndarray:
    """A fixed smooth off-centre vignette ``v`` float32 ``[H, W]`` with values in ``[1 - strength, 1]``.

    ``v = 1 - strength * min(r^2 / R^2, 1)``, where ``r`` is the distance of a pixel centre
    ``(i + 0.5, j + 0.5)`` from ``(centre[0] H, centre[1] W)`` and ``R = radius * sqrt(H^2 + W^2) / 2``.
    The defaults (centre at 0.3 H, 0.65 W; depth 0.6; R = 0.75 of the half-diagonal) darken the
    far corner by 60% and leave the top-right area bright.
    """
    height, width = int(shape[0]), int(shape[1])
    rows = (np.arange(height, dtype=np.float64) + 0.5)[:, None] - centre[0] * height
    columns = (np.arange(width, dtype=np.float64) + 0.5)[None, :] - centre[1] * width
    big_radius = radius * math.hypot(height, width) / 2.0
    vignette = 1.0 - strength * np.minimum((rows**2 + columns**2) / big_radius**2, 1.0)
    return vignette.astype(np.float32)


def apply_vignette(image, vignette) -> np.ndarray:
    """``image * vignette`` (broadcast over channels), float32."""
    image = np.asarray(image, dtype=np.float32)
    vignette = np.asarray(vignette, dtype=np.float32)
    if image.ndim == 3:
        vignette = vignette[:, :, None]
    return (image * vignette).astype(np.float32)


def exposure_matched(image, reference) -> np.ndarray:
    """``image`` scaled to ``reference``'s mean brightness, clipped to [0, 1], float32.

    A diagnostic for exposure-sensitive no-reference scores: PIQE's MSCN coefficients use a
    constant C = 1 (in 8-bit grey levels), so a global brightening alone raises PIQE. Scoring an
    output at its input's exposure separates that from the enhancement's own effect.
    """
    image = np.asarray(image, dtype=np.float32)
    target, current = float(np.mean(reference)), float(np.mean(image))
    if not current > 0.0:
        return np.clip(image, 0.0, 1.0)
    return np.clip(image * (target / current), 0.0, 1.0).astype(np.float32)


def shading_removed(corrected, vignetted, block: int = DEFAULT_BLOCK) -> float:
    """``1 - non_uniformity(corrected) / non_uniformity(vignetted)``: the share of shading removed.

    1 for a perfect corrector of an otherwise evenly lit image, 0 for doing nothing, negative when
    the enhancer made the illumination less even. NaN when ``vignetted`` is already perfectly even.
    """
    before = non_uniformity(vignetted, block)
    if not before > 0.0:
        return float("nan")
    return 1.0 - non_uniformity(corrected, block) / before


# ------------------------------------------------------------------------------ restoration
def planted_degradation(image, rng: np.random.Generator) -> Tuple[np.ndarray, Dict[str, float]]:
    """The benchmark's restoration protocol: ``(degraded, parameters)`` of a float image in [0, 1].

    In this order, with parameters drawn from ``rng`` in the ``PLANTED_*`` ranges: an off-centre
    vignette ``1 - a min(r^2, 1)`` (centre anywhere in the middle 60% of the frame, r in units of
    the half-diagonal) times a linear ramp ``1 + b t`` (t in [-1, 1] along a random direction),
    scaled to a maximum of 1; a Gaussian blur of sigma s pixels (reflected borders); contrast
    ``m + c (x - m)`` around the mean; Poisson-Gaussian noise ``x + n sqrt(k^2 2x + r^2)``
    (k the shot-noise std at mid-grey, r = ``PLANTED_READ_NOISE``); clipped to [0, 1].
    ``image``: ``[H, W]`` or ``[H, W, C]``; returns float32 of the same shape.
    """
    array = np.asarray(image, dtype=np.float64)
    planes = array[:, :, None] if array.ndim == 2 else array
    if planes.ndim != 3 or planes.size == 0:
        raise InputError(f"expected an image [H, W] or [H, W, C], got shape {np.shape(image)}")
    height, width = planes.shape[:2]
    draw = lambda low_high: float(rng.uniform(*low_high))  # noqa: E731
    params = {
        "centre_row": float(rng.uniform(0.2, 0.8)), "centre_col": float(rng.uniform(0.2, 0.8)),
        "shading": draw(PLANTED_SHADING), "ramp": draw(PLANTED_RAMP), "ramp_angle": float(rng.uniform(0, 2 * np.pi)),
        "blur_sigma": draw(PLANTED_BLUR_SIGMA), "contrast": draw(PLANTED_CONTRAST),
        "shot_noise": draw(PLANTED_SHOT_NOISE), "read_noise": PLANTED_READ_NOISE,
    }
    rows = (np.arange(height) + 0.5)[:, None] / height
    cols = (np.arange(width) + 0.5)[None, :] / width
    radius_squared = ((rows - params["centre_row"]) ** 2 + (cols - params["centre_col"]) ** 2) / 0.5
    along = (np.cos(params["ramp_angle"]) * (2 * cols - 1) + np.sin(params["ramp_angle"]) * (2 * rows - 1)) / math.sqrt(2)
    field = (1.0 - params["shading"] * np.minimum(radius_squared, 1.0)) * (1.0 + params["ramp"] * along)
    degraded = planes * (field / field.max())[:, :, None]
    degraded = cv2.GaussianBlur(degraded, (0, 0), sigmaX=params["blur_sigma"], borderType=cv2.BORDER_REFLECT)
    degraded = degraded.reshape(planes.shape)  # OpenCV drops a trailing axis of size 1
    mean = degraded.mean(axis=(0, 1), keepdims=True)
    degraded = mean + params["contrast"] * (degraded - mean)
    std = np.sqrt(params["shot_noise"] ** 2 * 2.0 * np.maximum(degraded, 0.0) + params["read_noise"] ** 2)
    degraded = np.clip(degraded + std * rng.standard_normal(degraded.shape), 0.0, 1.0).astype(np.float32)
    return (degraded[:, :, 0] if array.ndim == 2 else degraded), params


def share_given_back(clean: float, degraded: float, restored: float) -> float:
    """``(restored - degraded) / (clean - degraded)``: the share of a score lost to a degradation
    that a restorer gives back (1 = all of it, 0 = none, negative = worse); NaN when nothing was lost."""
    lost = clean - degraded
    return (restored - degraded) / lost if lost > 0 else float("nan")


# ------------------------------------------------------------------------------ summaries
def summarize(values: Iterable[float]) -> Dict[str, float]:
    """``{"mean", "std", "count"}`` over the finite values (std with ``ddof=0``; NaN when none):
    the report's `Summary` as a dict."""
    return dataclasses.asdict(Summary.of([float(value) for value in values]))


# ------------------------------------------------------------------------------ targets
#: Targets of an enhancer on the benchmark (thresholds of :func:`target_checks`).
TARGET_SHADING_REMOVED = 0.70
TARGET_NONUNIFORMITY_RATIO = 0.5
TARGET_BORDER_MARGIN = 0.01
TARGET_DETAIL_CORRELATION = 0.95
TARGET_PSNR_GAIN_DB = 3.0
TARGET_DICE_GIVEN_BACK = 0.5


def _mean(table, name: str, metric: str) -> float:
    """``table[name][metric]["mean"]`` of a summary table, NaN when missing."""
    try:
        return float(table[name][metric]["mean"])
    except (KeyError, TypeError):
        return float("nan")


def _add_check(checks: list, name: str, value: float, threshold: float, rule: str, passed) -> None:
    """Appends one target's result (failed when a value is missing or NaN)."""
    ok = bool(passed) and math.isfinite(value) and math.isfinite(threshold)
    checks.append({"name": name, "value": value, "threshold": threshold, "rule": rule, "passed": ok})


def target_checks(
    real: Dict[str, Dict[str, Dict[str, float]]],
    synthetic: Dict[str, Dict[str, Dict[str, float]]],
    method: str,
    baselines: Sequence[str],
    original: str = "original",
) -> list:
    """Whether ``method`` meets the benchmark's targets, one dict per target.

    ``real`` and ``synthetic`` map method -> metric -> :func:`summarize` result, with the metric
    keys of ``benchmarks/quality.py`` (``shading_removed``, ``nonuniformity_ratio``,
    ``border_band``, ``detail_correlation``, ``niqe``, ``piqe``, ``average_gradient``; ``psnr``).
    Means are compared. Each dict: ``name``, ``value``, ``threshold`` (what ``value`` is compared
    with), ``rule`` (text), ``passed`` (False when a value is missing or NaN).
    """

    checks = []
    add = functools.partial(_add_check, checks)
    value = _mean(real, method, "shading_removed")
    add("planted shading removed", value, TARGET_SHADING_REMOVED, f">= {TARGET_SHADING_REMOVED:.0%}",
        value >= TARGET_SHADING_REMOVED)
    value = _mean(real, method, "nonuniformity_ratio")
    add("plain non-uniformity ratio", value, TARGET_NONUNIFORMITY_RATIO, f"<= {TARGET_NONUNIFORMITY_RATIO}",
        value <= TARGET_NONUNIFORMITY_RATIO)
    value = _mean(real, method, "border_band")
    threshold = _mean(real, original, "border_band") + TARGET_BORDER_MARGIN
    add("border band", value, threshold, f"<= input's band + {TARGET_BORDER_MARGIN}", value <= threshold)
    value = _mean(real, method, "detail_correlation")
    add("planted detail correlation", value, TARGET_DETAIL_CORRELATION, f">= {TARGET_DETAIL_CORRELATION}",
        value >= TARGET_DETAIL_CORRELATION)
    for metric, label, better in (("niqe", "NIQE", "<="), ("piqe", "PIQE", "<="), ("average_gradient", "AvG", ">=")):
        value, threshold = _mean(real, method, metric), _mean(real, original, metric)
        add(label, value, threshold, f"{better} original's", value <= threshold if better == "<=" else value >= threshold)
    value = _mean(synthetic, method, "psnr")
    threshold = _mean(synthetic, original, "psnr") + TARGET_PSNR_GAIN_DB
    add("synthetic PSNR vs degraded", value, threshold, f">= degraded + {TARGET_PSNR_GAIN_DB:g} dB", value >= threshold)
    baseline_psnr = [_mean(synthetic, name, "psnr") for name in baselines]
    threshold = max(baseline_psnr) if baseline_psnr else float("nan")
    best = baselines[int(np.nanargmax(baseline_psnr))] if baseline_psnr and np.isfinite(baseline_psnr).any() else "-"
    add("synthetic PSNR vs baselines", value, threshold, f"> every baseline's (best: {best})", value > threshold)
    return checks


def restoration_checks(
    restoration: Dict[str, Dict[str, Dict[str, float]]],
    segmentation: Dict[str, Dict[str, Dict[str, float]]],
    method: str,
    baselines: Sequence[str],
    original: str = "original",
) -> list:
    """Whether ``method`` meets the restoration targets (issue #21), as :func:`target_checks` reports them.

    ``restoration``: method -> ``detail_psnr`` / ``matched_ssim`` summaries on planted-degraded real
    frames; both must beat the degraded input (``original``) and every baseline. ``segmentation``:
    method -> ``dice_given_back`` summary; at least ``TARGET_DICE_GIVEN_BACK`` of the Dice lost to
    the degradation must come back. Missing parts give no checks.
    """
    checks = []
    add = functools.partial(_add_check, checks)
    for metric, label in (("detail_psnr", "restored detail PSNR"), ("matched_ssim", "restored SSIM")):
        if method not in restoration:
            break
        value = _mean(restoration, method, metric)
        add(f"{label} vs degraded", value, _mean(restoration, original, metric), "> degraded input's",
            value > _mean(restoration, original, metric))
        others = {name: _mean(restoration, name, metric) for name in baselines}
        best = max(others, key=lambda name: -math.inf if math.isnan(others[name]) else others[name]) if others else "-"
        threshold = others.get(best, float("nan"))
        add(f"{label} vs baselines", value, threshold, f"> every baseline's (best: {best})", value > threshold)
    if method in segmentation:
        value = _mean(segmentation, method, "dice_given_back")
        add("Dice lost to the degradation given back", value, TARGET_DICE_GIVEN_BACK,
            f">= {TARGET_DICE_GIVEN_BACK:.0%}", value >= TARGET_DICE_GIVEN_BACK)
        # Scenes differ a lot in how much a restorer gives back (a std of about 30 points), so the
        # mean's precision is reported with it.
        checks[-1]["standard_error"] = standard_error(segmentation[method]["dice_given_back"])
    return checks


def standard_error(summary: Dict[str, float]) -> float:
    """The standard error of a :func:`summarize` mean, ``std / sqrt(count - 1)`` (``std`` has
    ``ddof=0``, so this is the sample std over ``sqrt(count)``); NaN with fewer than two values."""
    count = int(summary.get("count", 0))
    return float(summary["std"]) / math.sqrt(count - 1) if count > 1 else float("nan")


__all__ = [
    "BORDER_INNER",
    "BORDER_OUTER",
    "DEFAULT_BLOCK",
    "DETAIL_SIGMA",
    "apply_vignette",
    "block_means",
    "border_band",
    "detail_correlation",
    "detail_psnr",
    "fine_detail",
    "matched_ssim",
    "non_uniformity",
    "pearson",
    "planted_degradation",
    "planted_vignette",
    "psnr",
    "restoration_checks",
    "shading_removed",
    "share_given_back",
    "standard_error",
    "ssim",
    "ssim_map",
    "summarize",
    "target_checks",
]
