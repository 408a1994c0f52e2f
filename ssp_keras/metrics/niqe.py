"""NIQE, the Natural Image Quality Evaluator (lower is better).

Reference: A. Mittal, R. Soundararajan, A. C. Bovik, "Making a 'Completely Blind' Image Quality
Analyzer", IEEE Signal Processing Letters 20(3), 209-212, 2013. This module reproduces MATLAB's
``niqe`` (and the authors' release) with the pristine model shipped in ``data/`` (see NOTICE.txt):

1. The 8-bit luma (:func:`ssp_keras.metrics.no_reference.to_luma8`, BT.601 Y for colour) is cropped
   to whole 96x96 blocks (bottom/right remainder dropped, no border crop otherwise).
2. At two scales (full, then MATLAB ``imresize(..., 0.5)``: bicubic WITH antialiasing, implemented
   here by :func:`matlab_imresize`), MSCN coefficients are computed with the model's 7x7 Gaussian
   window and C = 1; each block (96x96, then 48x48) gives 18 features: the generalised Gaussian fit
   of its MSCN coefficients (shape, mean of the two scales) and asymmetric generalised Gaussian fits
   of the products of horizontally, vertically and diagonally neighbouring coefficients (shape,
   mean, left and right scale), neighbours taken circularly within the block as MATLAB's
   ``circshift``.
3. A Gaussian (mean ``mu_d``, covariance ``cov_d``) is fitted to the 36-D block features and
   ``NIQE = sqrt((mu_p - mu_d)^T pinv((cov_p + cov_d) / 2) (mu_p - mu_d))``.

Numerics that matter for agreement with MATLAB (test vector: BasicSR's ``baboon.png``, MATLAB R2021a
5.72957338 on its BT.601 luma; this module gives 5.7295757):

* the luma is rounded to 8 bits first, as MATLAB's ``rgb2ycbcr`` on a ``uint8`` image (the unrounded
  luma of the test image scores 5.636);
* the local moments of the MSCN step are stored in single precision (:data:`MSCN_PRECISION`), as
  in BasicSR's port: in float64 throughout, one shape fit of one block of the test image lands one
  grid step (0.001) away and the score moves to 5.72996. The fits themselves run in float64.
"""

from __future__ import annotations

import functools
import math
import pathlib
import warnings
from typing import Tuple

import numpy as np
from scipy.special import gamma

from ssp_keras.errors import InputError
from ssp_keras.metrics.no_reference import mscn_coefficients, row_bands, rows_with_context, to_luma8

NIQE_BLOCK_SIZE = 96  # the block size the pristine model was fitted with
# Precision of the MSCN local moments: single, which reproduces MATLAB's published values (see the
# module docstring); float64 gives 5.72996 instead of 5.72957 on the test vector.
MSCN_PRECISION = np.float32
PRISTINE_MODEL_PATH = pathlib.Path(__file__).resolve().parent / "data" / "niqe_pris_params.npz"

# Grid of generalised-Gaussian shapes searched by the moment-matching fit (MATLAB: 0.2:0.001:10),
# and the ratio E[|x|]^2 / E[x^2] each shape implies. The ratio increases strictly with the shape,
# which lets the fit use a binary search instead of scanning the whole grid for every block.
_SHAPE_GRID = 0.2 + 0.001 * np.arange(9801)
_MOMENT_RATIO_GRID = gamma(2.0 / _SHAPE_GRID) ** 2 / (gamma(1.0 / _SHAPE_GRID) * gamma(3.0 / _SHAPE_GRID))

# Neighbour offsets (rows, columns) for the paired products: horizontal, vertical, two diagonals.
_NEIGHBOUR_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@functools.lru_cache(maxsize=1)
def load_pristine_model() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pristine model: mean ``[36]``, covariance ``[36, 36]`` and the 7x7 Gaussian window.

    Read once from the package data and returned read-only (shared between calls).
    """
    with np.load(PRISTINE_MODEL_PATH) as data:
        mean = np.array(data["mu_pris_param"], dtype=np.float64).reshape(-1)
        covariance = np.array(data["cov_pris_param"], dtype=np.float64)
        window = np.array(data["gaussian_window"], dtype=np.float64)
    for array in (mean, covariance, window):
        array.setflags(write=False)
    return mean, covariance, window


def _cubic(distance: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as MATLAB ``imresize``'s ``'bicubic'``."""
    absolute = np.abs(distance)
    inner = (1.5 * absolute**3 - 2.5 * absolute**2 + 1.0) * (absolute <= 1)
    outer_support = (absolute > 1) & (absolute <= 2)
    outer = (-0.5 * absolute**3 + 2.5 * absolute**2 - 4.0 * absolute + 2.0) * outer_support
    return inner + outer


def _matlab_resize_weights(input_length: int, scale: float):
    """MATLAB's bicubic ``imresize`` along one axis as a sparse ``[ceil(input_length * scale), input_length]``
    matrix (scipy CSR): each output is a weighted sum of a few inputs.

    Follows MATLAB's ``contributions``: when shrinking, the kernel is stretched by ``1 / scale`` (the
    antialiasing), every output's weights are normalised to sum to 1, and taps outside the image are
    mirrored back inside (``[1:n, n:-1:1]``, the edge sample repeated; repeated taps add up).
    """
    from scipy import sparse

    output_length = int(math.ceil(input_length * scale))
    antialias = scale < 1
    kernel_width = 4.0 / scale if antialias else 4.0
    # Output pixel centres (1-based, as MATLAB) mapped to input coordinates.
    centres = np.arange(1, output_length + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    first_tap = np.floor(centres - kernel_width / 2.0)
    tap_count = int(math.ceil(kernel_width)) + 2
    taps = first_tap[:, None] + np.arange(tap_count)[None, :]
    distances = centres[:, None] - taps
    weights = scale * _cubic(distances * scale) if antialias else _cubic(distances)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(input_length), np.arange(input_length)[::-1]])
    source = mirror[np.mod(taps.astype(np.int64) - 1, 2 * input_length)]
    rows = np.broadcast_to(np.arange(output_length)[:, None], source.shape)
    matrix = sparse.coo_matrix((weights.ravel(), (rows.ravel(), source.ravel())), shape=(output_length, input_length))
    return matrix.tocsr()  # (duplicate entries summed)


def _matlab_resize_matrix(input_length: int, scale: float) -> np.ndarray:
    """The dense ``[ceil(input_length * scale), input_length]`` matrix of `_matlab_resize_weights`."""
    return _matlab_resize_weights(input_length, scale).toarray()


def matlab_imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize a 2-D image as MATLAB ``imresize(image, scale)`` (bicubic, antialiased when shrinking).

    Unlike ``cv2.resize``, MATLAB low-pass filters when shrinking (the cubic kernel widened by
    ``1 / scale``); NIQE's second scale depends on it.

    Args:
        image: ``[H, W]`` values (any range and numeric type; no clipping or rounding is applied).
        scale: a positive factor applied to both sides; output ``[ceil(H * scale), ceil(W * scale)]``.

    Returns:
        float64 ``[ceil(H * scale), ceil(W * scale)]``. Computed for bands of output rows from the
        input rows they need, so memory is the output's plus a band's, whatever the input's type.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputError(f"matlab_imresize expects a 2-D image, got shape {image.shape}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    rows_matrix = _matlab_resize_weights(image.shape[0], scale)
    columns_matrix = _matlab_resize_weights(image.shape[1], scale)
    output = np.empty((rows_matrix.shape[0], columns_matrix.shape[0]))
    for top, bottom in row_bands(*output.shape):  # bands of output rows
        rows = rows_matrix[top:bottom]
        first, last = int(rows.indices.min()), int(rows.indices.max()) + 1  # the input rows these outputs use
        band = rows[:, first:last] @ image[first:last].astype(np.float64)
        output[top:bottom] = (columns_matrix @ band.T).T
    return output


def _fit_aggd(samples: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching fit of an asymmetric generalised Gaussian to each row of ``samples``.

    Args:
        samples: ``[N, M]``, N independent sample sets.

    Returns:
        ``(shape, left_scale, right_scale)``, each ``[N]``. A set without negative (or positive)
        values has NaN scales and, as MATLAB's ``min`` over an all-NaN vector, the first grid shape.
    """
    negative = samples < 0
    positive = samples > 0
    squares = samples * samples
    with np.errstate(divide="ignore", invalid="ignore"):
        left_std = np.sqrt(np.sum(squares * negative, axis=1) / np.sum(negative, axis=1))
        right_std = np.sqrt(np.sum(squares * positive, axis=1) / np.sum(positive, axis=1))
        std_ratio = left_std / right_std
        moment_ratio = np.mean(np.abs(samples), axis=1) ** 2 / np.mean(squares, axis=1)
        normalised_ratio = moment_ratio * (std_ratio**3 + 1) * (std_ratio + 1) / (std_ratio**2 + 1) ** 2

    # Nearest grid ratio (first one on a tie, as argmin): the grid is strictly increasing, so it is
    # one of the two grid values that bracket the target.
    upper = np.clip(np.searchsorted(_MOMENT_RATIO_GRID, normalised_ratio), 1, _MOMENT_RATIO_GRID.size - 1)
    lower = upper - 1
    lower_error = (_MOMENT_RATIO_GRID[lower] - normalised_ratio) ** 2
    upper_error = (_MOMENT_RATIO_GRID[upper] - normalised_ratio) ** 2
    nearest = np.where(upper_error < lower_error, upper, lower)
    nearest[np.isnan(normalised_ratio)] = 0
    shape = _SHAPE_GRID[nearest]

    scale_factor = np.sqrt(gamma(1.0 / shape) / gamma(3.0 / shape))
    return shape, left_std * scale_factor, right_std * scale_factor


def _block_features(mscn: np.ndarray, block_size: int) -> np.ndarray:
    """The 18 NIQE features of every ``block_size`` square block of an MSCN map, ``[n_blocks, 18]``."""
    rows, columns = mscn.shape[0] // block_size, mscn.shape[1] // block_size
    blocks = (
        mscn[: rows * block_size, : columns * block_size]
        .reshape(rows, block_size, columns, block_size)
        .transpose(0, 2, 1, 3)
        .reshape(rows * columns, block_size, block_size)
    )
    block_count = blocks.shape[0]
    products = [blocks * np.roll(blocks, shift, axis=(1, 2)) for shift in _NEIGHBOUR_SHIFTS]
    # One fit call for the coefficients and the four products: rows [0, n) then [n, 2n), ...
    samples = np.concatenate([blocks] + products, axis=0).reshape(5 * block_count, -1)
    shape, left_scale, right_scale = _fit_aggd(samples)
    shape, left_scale, right_scale = (
        values.reshape(5, block_count) for values in (shape, left_scale, right_scale)
    )

    # Coefficients: a symmetric fit, so the mean of the two scales.
    features = [shape[0], (left_scale[0] + right_scale[0]) / 2.0]
    for pair in range(1, 5):
        # Mean of the asymmetric distribution (Mittal et al. 2012, eq. 8).
        mean = (right_scale[pair] - left_scale[pair]) * gamma(2.0 / shape[pair]) / gamma(1.0 / shape[pair])
        features += [shape[pair], mean, left_scale[pair], right_scale[pair]]
    return np.stack(features, axis=1)


def niqe_features(luma: np.ndarray, window: np.ndarray) -> np.ndarray:
    """The 36-D NIQE features of every 96x96 block of a luma image, ``[n_blocks, 36]``.

    Args:
        luma: ``[H, W]`` gray levels on the 0..255 scale (``uint8`` or float), ``H, W >= 96``.
        window: the 7x7 Gaussian window of the model.

    The MSCN coefficients and block features are computed for bands of block rows, each with the
    rows of context the window reaches, so temporaries are a band's (same values as whole).
    """
    luma = np.asarray(luma)
    block_rows, block_columns = luma.shape[0] // NIQE_BLOCK_SIZE, luma.shape[1] // NIQE_BLOCK_SIZE
    if block_rows == 0 or block_columns == 0:
        raise InputError(
            f"image: NIQE needs at least {NIQE_BLOCK_SIZE}x{NIQE_BLOCK_SIZE} pixels, "
            f"got {luma.shape[0]}x{luma.shape[1]}"
        )
    luma = luma[: block_rows * NIQE_BLOCK_SIZE, : block_columns * NIQE_BLOCK_SIZE]
    half_luma = matlab_imresize(luma, 0.5)
    features = []
    for scaled_luma, block_size in ((luma, NIQE_BLOCK_SIZE), (half_luma, NIQE_BLOCK_SIZE // 2)):
        context = window.shape[0] // 2
        per_band = []
        for top, bottom in row_bands(*scaled_luma.shape, multiple=block_size):
            rows, offset = rows_with_context(scaled_luma, top, bottom, context)
            mscn = mscn_coefficients(rows, window, dtype=MSCN_PRECISION)[offset:offset + bottom - top]
            per_band.append(_block_features(mscn.astype(np.float64), block_size))
        features.append(np.concatenate(per_band, axis=0))
    return np.concatenate(features, axis=1)


def niqe(image) -> float:
    """NIQE score of an image (lower is better; natural photographs are typically 3-6).

    Args:
        image: ``uint8`` or float in [0, 1], ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (RGB, reduced
            to BT.601 Y), at least 96x96 pixels.

    Returns:
        The score as a float. NaN when no block has usable statistics (e.g. a constant image, whose
        MSCN coefficients are all zero). With a single complete block the distorted covariance is
        taken as zero (one sample has no spread).
    """
    luma = to_luma8(image, conversion="bt601")
    pristine_mean, pristine_covariance, window = load_pristine_model()
    features = niqe_features(luma, window)

    # Blocks with undefined features (NaN) are skipped per feature in the mean and dropped entirely
    # from the covariance, as MATLAB's nanmean / nancov.
    complete = features[~np.isnan(features).any(axis=1)]
    if complete.shape[0] == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        distorted_mean = np.nanmean(features, axis=0)
    if complete.shape[0] > 1:
        distorted_covariance = np.cov(complete, rowvar=False)
    else:
        distorted_covariance = np.zeros_like(pristine_covariance)

    difference = pristine_mean - distorted_mean
    pooled_inverse = np.linalg.pinv((pristine_covariance + distorted_covariance) / 2.0)
    squared_distance = float(difference @ pooled_inverse @ difference)
    # A pseudo-inverse of a positive semi-definite matrix cannot give a negative form; clip rounding.
    return math.sqrt(max(squared_distance, 0.0))
