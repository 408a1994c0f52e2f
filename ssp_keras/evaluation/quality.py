"""Quality measures for the enhancement benchmark (``benchmarks/quality.py``).

Full-reference, on synthetic pairs whose clean image is known (:mod:`ssp_keras.data.synthetic`):

* :func:`psnr`: peak signal-to-noise ratio in dB, data range 1 by default;
* :func:`ssim`: the standard SSIM of Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image
  quality assessment: from error visibility to structural similarity", IEEE TIP 13(4), 2004, as in
  the authors' ``ssim_index.m``: 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, local
  statistics only where the window lies wholly inside the image ("valid"), averaged over the map
  (and over channels). It matches ``tf.image.ssim``.

Illumination and detail, on real frames (no clean image):

* :func:`non_uniformity`: the spread of the illumination, std of the means of non-overlapping
  ``block`` x ``block`` tiles divided by the image mean (0 = evenly lit);
* :func:`border_band`: mean of the outer ring of the frame minus the mean of the ring just inside
  it (a bright or dark frame edge left by an enhancer, e.g. from padding);
* :func:`planted_vignette`: a fixed, smooth, off-centre vignette to multiply into a frame, and
  :func:`shading_removed`: which share of the non-uniformity it added an enhancer takes away;
* :func:`detail_correlation`: Pearson correlation of the fine detail (image minus its Gaussian blur,
  sigma 3) of two images: whether an enhancer kept the fibres and texture of the frame.

Restoration, on real frames with a planted degradation (issue #21), scored against the plain frame:

* :func:`planted_degradation`: random off-centre shading and a ramp, Gaussian blur, contrast loss
  and Poisson-Gaussian noise, drawn from a seeded generator (the benchmark's fixed protocol);
* :func:`detail_psnr`: PSNR of the detail layer (image minus its Gaussian blur, sigma 10) after
  matching the output's detail gain to the reference's: whether fibres and texture were restored,
  whatever the enhancer did to brightness and shading;
* :func:`matched_ssim`: SSIM after the output's illumination is matched to the reference's (its
  local mean, a Gaussian of sigma 10 px, brought to the reference's): the plain frames have uneven
  illumination of their own, which every illumination corrector removes and plain SSIM would count
  as error; what is left is judged at the scale of fibres and noise.

:func:`summarize` gives mean, std (``ddof=0``) and count over images, ignoring NaN.

Images are ``[H, W]`` or ``[H, W, C]`` float arrays (values in [0, 1] for the quality measures;
colour images are reduced to the mean over channels where a single plane is needed).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Dict, Iterable, Sequence, Tuple

import cv2
import numpy as np

from ssp_keras.errors import InputError
from ssp_keras.utils.gaussian import gaussian_1d

#: Side of the non-overlapping tiles of :func:`non_uniformity` (8x8 tiles on a 384x384 frame).
DEFAULT_BLOCK = 48
#: Width of the outer ring of :func:`border_band`, and of the ring just inside it.
BORDER_OUTER = 6
BORDER_INNER = 12
#: Gaussian blur (pixels) whose residual is the "fine detail" of :func:`detail_correlation`.
DETAIL_SIGMA = 3.0
#: :func:`planted_vignette`: centre (fractions of height and width), depth and radius.
VIGNETTE_CENTRE = (0.3, 0.65)
VIGNETTE_STRENGTH = 0.6
VIGNETTE_RADIUS = 0.75  # of the half-diagonal
#: Gaussian blur (pixels) whose residual is the detail layer of :func:`detail_psnr`.
DETAIL_PSNR_SIGMA = 10.0
#: :func:`planted_degradation`'s ranges (each drawn uniformly per image).
PLANTED_SHADING = (0.3, 0.5)  # vignette depth
PLANTED_RAMP = (0.1, 0.3)  # linear ramp strength
PLANTED_BLUR_SIGMA = (1.2, 2.0)  # pixels
PLANTED_CONTRAST = (0.7, 0.9)  # factor around the mean
PLANTED_SHOT_NOISE = (0.02, 0.035)  # std at mid-grey
PLANTED_READ_NOISE = 0.005
#: SSIM constants (Wang et al. 2004).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _plane(image, name: str = "image") -> np.ndarray:
    """The image as float64 ``[H, W]`` (mean over channels for ``[H, W, C]``)."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3:
        array = array.mean(axis=2)
    if array.ndim != 2 or array.size == 0:
        raise InputError(f"{name}: expected an image [H, W] or [H, W, C], got shape {np.shape(image)}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: contains NaN or Inf values")
    return array


def _as_hwc(image, name: str) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.size == 0:
        raise InputError(f"{name}: expected an image [H, W] or [H, W, C], got shape {np.shape(image)}")
    return array


def _same_shape(first: np.ndarray, second: np.ndarray) -> None:
    if first.shape != second.shape:
        raise InputError(f"images differ in shape: {first.shape} and {second.shape}")


# ------------------------------------------------------------------------------ full reference
def psnr(image, reference, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range**2 / MSE)`` in dB (``inf`` when equal)."""
    image, reference = _as_hwc(image, "image"), _as_hwc(reference, "reference")
    _same_shape(image, reference)
    mse = float(np.mean((image - reference) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range**2 / mse)


def ssim_map(
    image,
    reference,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> np.ndarray:
    """The local SSIM values ``[H - window + 1, W - window + 1, C]`` (see :func:`ssim`)."""
    image, reference = _as_hwc(image, "image"), _as_hwc(reference, "reference")
    _same_shape(image, reference)
    height, width = image.shape[:2]
    if height < window or width < window:
        raise InputError(f"SSIM needs images of at least {window}x{window} pixels, got {height}x{width}")
    kernel = gaussian_1d(window, sigma)
    cut = window // 2

    def local_mean(values: np.ndarray) -> np.ndarray:
        # Separable Gaussian; only the "valid" part (window inside the image) is kept, so the
        # border mode does not matter.
        filtered = cv2.sepFilter2D(values, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        return filtered[cut:height - cut, cut:width - cut]

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    maps = []
    for channel in range(image.shape[2]):
        x, y = image[:, :, channel], reference[:, :, channel]
        mean_x, mean_y = local_mean(x), local_mean(y)
        var_x = local_mean(x * x) - mean_x**2
        var_y = local_mean(y * y) - mean_y**2
        cov_xy = local_mean(x * y) - mean_x * mean_y
        numerator = (2.0 * mean_x * mean_y + c1) * (2.0 * cov_xy + c2)
        denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
        maps.append(numerator / denominator)
    return np.stack(maps, axis=2)


def ssim(image, reference, **options) -> float:
    """Mean structural similarity of two images of the same shape (Wang et al. 2004).

    ``SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))``
    with local Gaussian-weighted statistics (``window`` x ``window``, ``sigma``), ``C1 = (K1 L)^2``,
    ``C2 = (K2 L)^2``, ``L = data_range``, averaged over the valid map and the channels. 1 for
    identical images. ``options``: ``data_range``, ``window``, ``sigma``, ``k1``, ``k2``, as
    :func:`ssim_map` takes them (the one list of SSIM parameters and their defaults).
    """
    return float(np.mean(ssim_map(image, reference, **options)))


# ------------------------------------------------------------------------------ illumination
def block_means(image, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Means of the non-overlapping ``block`` x ``block`` tiles, ``[rows, columns]``.

    The tile grid is centred: when ``block`` does not divide a side, the remainder is split between
    its two ends and left out. Raises `InputError` when the image is smaller than one tile.
    """
    plane = _plane(image)
    block = int(block)
    if block < 1:
        raise ValueError(f"block must be a positive number of pixels, got {block}")
    rows, columns = plane.shape[0] // block, plane.shape[1] // block
    if rows == 0 or columns == 0:
        raise InputError(f"image of {plane.shape[0]}x{plane.shape[1]} pixels is smaller than one {block}x{block} block")
    top = (plane.shape[0] - rows * block) // 2
    left = (plane.shape[1] - columns * block) // 2
    tiles = plane[top:top + rows * block, left:left + columns * block]
    return tiles.reshape(rows, block, columns, block).mean(axis=(1, 3))


def non_uniformity(image, block: int = DEFAULT_BLOCK) -> float:
    """Illumination non-uniformity: ``std(block means) / mean(image)`` (``ddof=0``).

    0 for an evenly lit image; NaN for an image whose mean is 0 (all black).
    """
    plane = _plane(image)
    mean = float(plane.mean())
    if mean <= 0.0:
        return float("nan")
    return float(block_means(plane, block).std()) / mean


def border_band(image, outer: int = BORDER_OUTER, inner: int = BORDER_INNER) -> float:
    """Mean of the outer ``outer``-pixel ring minus mean of the ``inner``-pixel ring just inside it.

    Signed (positive: a bright frame edge); 0 for a flat image. The second ring covers the pixels
    whose distance to the nearest edge is in ``[outer, outer + inner)``.
    """
    plane = _plane(image)
    height, width = plane.shape
    if min(height, width) <= 2 * (outer + inner):
        raise InputError(f"image of {height}x{width} pixels is too small for a {outer}+{inner} pixel border band")
    rows = np.arange(height)[:, None]
    columns = np.arange(width)[None, :]
    distance = np.minimum(np.minimum(rows, height - 1 - rows), np.minimum(columns, width - 1 - columns))
    outer_ring = distance < outer
    inner_ring = (distance >= outer) & (distance < outer + inner)
    return float(plane[outer_ring].mean() - plane[inner_ring].mean())


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


def fine_detail(image, sigma: float = DETAIL_SIGMA) -> np.ndarray:
    """``image - GaussianBlur(image, sigma)`` (reflected borders), float64 ``[H, W]``."""
    plane = _plane(image)
    blurred = cv2.GaussianBlur(plane, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    return plane - blurred


def pearson(first, second) -> float:
    """Pearson correlation of two arrays of the same shape (NaN when either is constant)."""
    first = np.asarray(first, dtype=np.float64).ravel()
    second = np.asarray(second, dtype=np.float64).ravel()
    if first.shape != second.shape:
        raise InputError(f"arrays differ in size: {first.size} and {second.size}")
    first = first - first.mean()
    second = second - second.mean()
    norm = math.sqrt(float(np.dot(first, first)) * float(np.dot(second, second)))
    if norm == 0.0:
        return float("nan")
    return float(np.dot(first, second)) / norm


def detail_correlation(output, reference, sigma: float = DETAIL_SIGMA) -> float:
    """Pearson correlation of the fine detail (:func:`fine_detail`) of ``output`` and ``reference``."""
    output, reference = _plane(output, "output"), _plane(reference, "reference")
    _same_shape(output, reference)
    return pearson(fine_detail(output, sigma), fine_detail(reference, sigma))


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


def _gain_matched(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``g output`` with the least-squares gain g that best matches ``reference``."""
    energy = float(np.dot(output.ravel(), output.ravel()))
    gain = float(np.dot(output.ravel(), reference.ravel())) / energy if energy > 0 else 0.0
    return gain * output


def detail_psnr(output, reference, sigma: float = DETAIL_PSNR_SIGMA) -> float:
    """PSNR (data range 1) of the gain-matched detail layer of ``output`` against ``reference``'s.

    Detail layer: ``x - GaussianBlur(x, sigma)`` (:func:`fine_detail`); the output's detail is
    scaled by the least-squares gain onto the reference's before the error is taken, so a global
    change of contrast is not counted, missing or smeared fibres and added noise are.
    """
    output, reference = _plane(output, "output"), _plane(reference, "reference")
    _same_shape(output, reference)
    reference_detail = fine_detail(reference, sigma)
    matched = _gain_matched(fine_detail(output, sigma), reference_detail)
    mse = float(np.mean((matched - reference_detail) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def matched_ssim(output, reference, sigma: float = DETAIL_PSNR_SIGMA) -> float:
    """:func:`ssim` of ``output`` with its illumination matched to ``reference``'s (gray).

    ``output * blur(reference) / blur(output)``, blur a Gaussian of ``sigma`` pixels (reflected
    borders): shading and exposure differences at scales above ``sigma`` are taken out, so SSIM
    judges the fibres, texture and noise, not the illumination correction.
    """
    output, reference = _plane(output, "output"), _plane(reference, "reference")
    _same_shape(output, reference)
    blur = lambda image: cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    return ssim(output * blur(reference) / np.maximum(blur(output), 1e-6), reference)


def share_given_back(clean: float, degraded: float, restored: float) -> float:
    """``(restored - degraded) / (clean - degraded)``: the share of a score lost to a degradation
    that a restorer gives back (1 = all of it, 0 = none, negative = worse); NaN when nothing was lost."""
    lost = clean - degraded
    return (restored - degraded) / lost if lost > 0 else float("nan")


# ------------------------------------------------------------------------------ summaries
def summarize(values: Iterable[float]) -> Dict[str, float]:
    """``{"mean", "std", "count"}`` over the finite values (std with ``ddof=0``; NaN when none)."""
    array = np.asarray([float(value) for value in values], dtype=np.float64)
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "count": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {"mean": float(finite.mean()), "std": float(finite.std()), "count": int(finite.size)}


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
    return checks


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
    "ssim",
    "ssim_map",
    "summarize",
    "target_checks",
]
