"""No-reference image statistics of the paper's Table 1, and the helpers the metrics share.

* :func:`entropy`: Shannon entropy (bits) of the 256-bin histogram of the 8-bit luma.
* :func:`average_gradient` (AvG): mean over pixels of ``sqrt((gx**2 + gy**2) / 2)``, with ``gx`` and
  ``gy`` the central differences of the 8-bit luma (SPEC section 6).
* :func:`to_luma8`: any supported image to its 8-bit luma, the common input of every metric here
  (NIQE and PIQE included).
* :func:`mscn_coefficients`: mean-subtracted contrast-normalised coefficients, shared by NIQE and
  PIQE (Mittal, Moorthy and Bovik, "No-reference image quality assessment in the spatial domain",
  IEEE TIP 21(12), 2012, eq. 1).

Accepted images: ``uint8`` (0..255) or floating point in [0, 1] (scaled by 255), shaped ``[H, W]``,
``[H, W, 1]`` or ``[H, W, 3]`` (RGB). Floats may stray outside [0, 1] by less than half an 8-bit
step (rounding noise from a network output); anything further, NaN, Inf, another dtype or another
shape raises :class:`ssp_keras.errors.InputError` (a ``ValueError``) that names the problem.

Luma choices, documented once here:

* A gray image (``[H, W]``, ``[H, W, 1]``, or RGB whose three channels are identical, such as the
  CCMID JPEG files) is used as it is, so a metric does not depend on how a gray image was stored.
* A colour image is converted with ITU-R BT.601 Y as MATLAB's ``rgb2ycbcr``:
  ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (R, G, B in [0, 1], Y in 16..235). NIQE needs this
  luma to reproduce its MATLAB test vector; entropy and AvG use the same one. PIQE instead uses
  MATLAB ``rgb2gray`` weights, because MATLAB's ``piqe`` does (see :mod:`ssp_keras.metrics.piqe`).
* Values are rounded to integers half away from zero, like MATLAB's conversions to ``uint8``.

Memory: every metric works on bands of rows (`row_bands`, with the few rows of context a filter
needs), so its temporary float64 arrays are a band's, not the image's: an 8000x8000 image is
measured in well under 3 GB (``benchmarks/metrics_memory.py``), with the results of a whole-image
computation.
"""

from __future__ import annotations

from typing import Tuple

import cv2
import numpy as np

from ssp_keras.errors import InputError
from ssp_keras.utils.gaussian import gaussian_window  # noqa: F401  (NIQE's and PIQE's window, part of this API)

# Floats may exceed [0, 1] by less than half an 8-bit step: they still round into 0..255.
FLOAT_RANGE_TOLERANCE = 0.5 / 255.0

# MATLAB rgb2ycbcr, Y row, for R, G, B in [0, 1]; the offset puts black at 16.
BT601_Y_WEIGHTS = (65.481, 128.553, 24.966)
BT601_Y_OFFSET = 16.0
# MATLAB rgb2gray: first row of the inverse of the NTSC (YIQ) matrix; they sum to 1.
MATLAB_RGB2GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)

LUMA_CONVERSIONS = ("bt601", "rgb2gray")

#: Pixels per band of rows in the banded computations (about 8 MB per float64 temporary).
BAND_PIXELS = 2**20


def row_bands(height: int, width: int, multiple: int = 1):
    """``(top, bottom)`` row ranges covering ``[0, height)`` of about `BAND_PIXELS` pixels each,
    every band a multiple of ``multiple`` rows (the last may be shorter)."""
    rows = max(multiple, (BAND_PIXELS // max(width, 1)) // multiple * multiple)
    return [(top, min(top + rows, height)) for top in range(0, height, rows)]


def rows_with_context(values: np.ndarray, top: int, bottom: int, context: int) -> Tuple[np.ndarray, int]:
    """Rows ``[top - context, bottom + context)`` of ``values``, past its edges the edge row repeated
    (what a filter with replicated borders sees), and the offset of row ``top`` in them."""
    rows = np.clip(np.arange(top - context, bottom + context), 0, values.shape[0] - 1)
    return values[rows], context


def check_image(image, name: str = "image") -> np.ndarray:
    """Validate an image for the metrics and return it as a NumPy array (not copied).

    Args:
        image: array-like ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``; ``uint8`` or floating point in
            [0, 1] (see the module docstring for the tolerance).
        name: how error messages call the argument.

    Raises:
        InputError: wrong rank, wrong channel count, empty, unsupported dtype, NaN/Inf, or floats
            outside [0, 1].
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise InputError(
            f"{name}: expected an image of shape [H, W], [H, W, 1] or [H, W, 3], "
            f"got rank {array.ndim} (shape {array.shape})"
        )
    if array.ndim == 3 and array.shape[2] not in (1, 3):
        raise InputError(
            f"{name}: expected 1 (gray) or 3 (RGB) channels, got {array.shape[2]} (shape {array.shape})"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name}: the image is empty (shape {array.shape})")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{name}: expected uint8 or floating point in [0, 1], got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: contains NaN or Inf values")
    low, high = float(array.min()), float(array.max())
    if low < -FLOAT_RANGE_TOLERANCE or high > 1.0 + FLOAT_RANGE_TOLERANCE:
        raise InputError(
            f"{name}: floating-point images must lie in [0, 1], got values in [{low:.4g}, {high:.4g}]"
            + (" (an 8-bit image stored as float? divide it by 255)" if high > 1.5 else "")
        )
    return array


def _round_half_away(values: np.ndarray) -> np.ndarray:
    # Values here are never negative, so half away from zero is floor(x + 0.5); np.round would
    # round 126.5 to 126 (half to even) where MATLAB gives 127.
    return np.floor(values + 0.5)


def to_luma8(image, conversion: str = "bt601", name: str = "image") -> np.ndarray:
    """The 8-bit luma of an image, as ``uint8 [H, W]``.

    Args:
        image: ``uint8`` or float in [0, 1], ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (RGB).
        conversion: for colour images, ``"bt601"`` (MATLAB ``rgb2ycbcr`` Y, 16..235) or
            ``"rgb2gray"`` (MATLAB ``rgb2gray``, 0..255). Gray images, including RGB with three
            identical channels, are not converted.
        name: how error messages call the argument.

    Returns:
        ``uint8`` array ``[H, W]`` (for a ``uint8`` gray input, the input itself: not a copy).
    """
    if conversion not in LUMA_CONVERSIONS:
        raise ValueError(f"conversion must be one of {list(LUMA_CONVERSIONS)}, got {conversion!r}")
    array = check_image(image, name)
    if array.ndim == 3:
        if array.shape[2] == 1 or (
            np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(array[..., 0], array[..., 2])
        ):
            array = array[..., 0]
    if array.ndim == 2 and array.dtype == np.uint8:
        return array
    luma = np.empty(array.shape[:2], np.uint8)
    for top, bottom in row_bands(*array.shape[:2]):  # float64 temporaries of a band only
        luma[top:bottom] = _luma_rows(array[top:bottom], conversion)
    return luma


def _luma_rows(array: np.ndarray, conversion: str) -> np.ndarray:
    if array.ndim == 2:
        scaled = array.astype(np.float64) * 255.0
    else:
        # Colour: weights expect R, G, B in [0, 1].
        unit = array.astype(np.float64) / 255.0 if array.dtype == np.uint8 else array.astype(np.float64)
        if conversion == "bt601":
            scaled = unit @ np.asarray(BT601_Y_WEIGHTS) + BT601_Y_OFFSET
        else:
            scaled = (unit @ np.asarray(MATLAB_RGB2GRAY_WEIGHTS)) * 255.0
    return np.clip(_round_half_away(scaled), 0, 255).astype(np.uint8)


def entropy(image) -> float:
    """Shannon entropy, in bits, of the 256-bin histogram of the image's 8-bit luma.

    Args:
        image: ``uint8`` or float in [0, 1], ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``.

    Returns:
        A float in [0, 8]: 0 for a constant image, 8 when all 256 levels are equally frequent.
    """
    luma = to_luma8(image)
    counts = np.bincount(luma.ravel(), minlength=256)
    probabilities = counts[counts > 0] / luma.size
    # The "+ 0.0" turns the -0.0 of a constant image into 0.0.
    return float(-np.sum(probabilities * np.log2(probabilities))) + 0.0


def average_gradient(image) -> float:
    """Average gradient (AvG): mean over pixels of ``sqrt((gx**2 + gy**2) / 2)`` on the 8-bit luma.

    ``gx`` (along columns) and ``gy`` (along rows) are the differences of ``numpy.gradient``: central,
    ``(f[i + 1] - f[i - 1]) / 2``, inside the image, and one-sided, ``f[1] - f[0]`` and
    ``f[-1] - f[-2]``, on the first and last row/column. Every pixel therefore contributes and no
    padding value is invented; a linear ramp of slope ``k`` has AvG exactly ``k / sqrt(2)``.

    Args:
        image: ``uint8`` or float in [0, 1], ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``, with
            ``H, W >= 2``.

    Returns:
        A float >= 0, in gray levels per pixel (0..255 scale).
    """
    luma = to_luma8(image)
    if min(luma.shape) < 2:
        raise InputError(
            f"image: average_gradient needs at least 2x2 pixels, got {luma.shape[0]}x{luma.shape[1]}"
        )
    total = 0.0
    for top, bottom in row_bands(*luma.shape):
        # One row of context each side, so central differences cross band edges as on the whole image.
        first, last = max(top - 1, 0), min(bottom + 1, luma.shape[0])
        gradient_rows, gradient_columns = np.gradient(luma[first:last].astype(np.float64))
        inner = slice(top - first, top - first + bottom - top)
        total += float(np.sum(np.sqrt((gradient_columns[inner] ** 2 + gradient_rows[inner] ** 2) / 2.0)))
    return total / luma.size


def mscn_coefficients(
    luma: np.ndarray, window: np.ndarray, stabilizer: float = 1.0, dtype=np.float64
) -> np.ndarray:
    """Mean-subtracted contrast-normalised (MSCN) coefficients ``(I - mu) / (sigma + C)``.

    ``mu`` and ``sigma`` are the local mean and standard deviation under ``window``, with the image
    border replicated (MATLAB ``imfilter(..., 'replicate')`` / ``imgaussfilt(..., 'Padding',
    'replicate')``). ``sigma`` is ``sqrt(|E[I^2] - mu^2|)``: the absolute value absorbs the tiny
    negative variances of flat regions left by rounding.

    Args:
        luma: ``[H, W]`` gray levels on the 0..255 scale.
        window: normalised 2-D weights, e.g. :func:`gaussian_window`.
        stabilizer: ``C``; 1 for NIQE and PIQE on the 0..255 scale.
        dtype: precision in which the image, ``mu``, ``E[I^2]`` and the result are stored (the
            window sums themselves are always accumulated in float64). ``float32`` reproduces
            single-precision pipelines, whose rounding of ``E[I^2] - mu^2`` is not negligible.

    Returns:
        ``[H, W]`` array of ``dtype``.
    """
    luma = np.asarray(luma).astype(dtype, copy=False)
    window = np.asarray(window, dtype=np.float64)

    def local_mean(values: np.ndarray) -> np.ndarray:
        # filter2D correlates; the windows used here are symmetric, so this is also a convolution.
        smoothed = cv2.filter2D(
            values.astype(np.float64), cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE
        )
        return smoothed.astype(dtype, copy=False)

    mean = local_mean(luma)
    deviation = np.sqrt(np.abs(local_mean(luma * luma) - mean * mean))
    return (luma - mean) / (deviation + np.asarray(stabilizer, dtype=dtype))
