"""PIQE, the Perception-based Image Quality Evaluator (0 = best, 100 = worst).

Reference: N. Venkatanath, D. Praneeth, M. C. Bh, S. S. Channappayya, S. S. Medasani, "Blind image
quality evaluation using perception based features", Twenty First National Conference on
Communications (NCC), 2015. This module reproduces MATLAB's ``piqe`` (Image Processing Toolbox,
2018) step by step, vectorised over blocks:

1. Gray levels: MATLAB ``round(255 * im2double(rgb2gray(I)))``, i.e.
   :func:`ssp_keras.metrics.no_reference.to_luma8` with ``rgb2gray`` weights for colour images.
   If a side is not a multiple of 16, the image is padded at the bottom/right by repeating its last
   row/column (MATLAB ``padarray(..., 'replicate', 'post')``; MATLAB pads, it does not crop).
2. MSCN coefficients with a 7x7 Gaussian window, sigma 7/6, replicated borders and C = 1.
3. Each 16x16 block whose MSCN variance (unbiased) exceeds 0.1 is *active*. For an active block:

   * noticeable distortion: one of the 11 runs of 6 consecutive coefficients along any of its four
     edges has a standard deviation below 0.1 (a flat stretch next to activity: blockiness);
   * noise: with ``sigma`` the block's standard deviation and ``ratio`` the standard deviation of
     the two centre columns over that of the "surround", ``beta = |sigma - ratio| / max(sigma,
     ratio)``; the block is noisy when ``sigma > 2 beta``. The surround is what MATLAB's code leaves
     after deleting column 8 and then column 9 *of the shortened block*, i.e. original columns
     1-7, 9 and 11-16 (1-based); this quirk is kept so the scores match MATLAB.

4. Block score ``D = [distorted] (1 - var) + [noisy] var`` and
   ``PIQE = 100 (sum D + 1) / (number of active blocks + 1)``.

A uniform image has no active block and scores 100 (MATLAB documents the same: "bad quality").
Scores lie in [0, 100] for natural images; the formula can leave that range only for blocks whose
MSCN variance exceeds 1, which MATLAB does not clip either.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ssp_keras.metrics.no_reference import mscn_coefficients, row_bands, to_luma8
from ssp_keras.utils.gaussian import gaussian_window

PIQE_BLOCK_SIZE = 16
ACTIVITY_THRESHOLD = 0.1  # MSCN variance above which a block is spatially active
EDGE_SEGMENT_LENGTH = 6
EDGE_SEGMENT_STD_THRESHOLD = 0.1  # an edge run flatter than this marks a noticeable distortion
SCORE_STABILIZER = 1.0  # the C of the score, so that an image without active blocks is defined

# Centre columns (0-based) of a block, and the columns MATLAB's deletion leaves as its surround.
_CENTRE_COLUMNS = np.array([7, 8])
_SURROUND_COLUMNS = np.array([0, 1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15])


@dataclasses.dataclass(frozen=True)
class PIQEResult:
    """A PIQE score with MATLAB's three block masks (boolean ``[H, W]``, the input's size).

    Attributes:
        score: PIQE in [0, 100] (lower is better).
        activity_mask: pixels of spatially active blocks.
        noticeable_artifacts_mask: active blocks with a flat edge run (blockiness, sudden artefacts).
        noise_mask: active blocks flagged by the noise criterion.
    """

    score: float
    activity_mask: np.ndarray
    noticeable_artifacts_mask: np.ndarray
    noise_mask: np.ndarray


def _blocks(values: np.ndarray, size: int) -> np.ndarray:
    """``[H, W]`` (multiples of ``size``) to ``[H / size, W / size, size, size]``, a view."""
    rows, columns = values.shape[0] // size, values.shape[1] // size
    return values.reshape(rows, size, columns, size).swapaxes(1, 2)


def piqe_with_masks(image) -> PIQEResult:
    """PIQE score and block masks of an image.

    Args:
        image: ``uint8`` or float in [0, 1], ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` (RGB, reduced
            with MATLAB ``rgb2gray`` weights).

    Returns:
        :class:`PIQEResult`; masks have the input's height and width.
    """
    luma = to_luma8(image, conversion="rgb2gray")
    height, width = luma.shape
    score, active, distorted, noisy = _block_scores(luma)

    def to_pixels(block_mask: np.ndarray) -> np.ndarray:
        expanded = np.repeat(np.repeat(block_mask, PIQE_BLOCK_SIZE, axis=0), PIQE_BLOCK_SIZE, axis=1)
        return expanded[:height, :width]

    return PIQEResult(
        score=score,
        activity_mask=to_pixels(active),
        noticeable_artifacts_mask=to_pixels(distorted),
        noise_mask=to_pixels(noisy),
    )


def _block_scores(luma: np.ndarray):
    """``(score, active, distorted, noisy)`` (the masks per 16x16 block) of an 8-bit luma ``[H, W]``.

    Computed for bands of block rows, each with the rows of context the MSCN window reaches: the
    padded image (bottom/right edge rows and columns repeated up to multiples of 16) is never made
    whole, and the results are those of the whole image.
    """
    height, width = luma.shape
    padded_height = -(-height // PIQE_BLOCK_SIZE) * PIQE_BLOCK_SIZE
    padded_width = -(-width // PIQE_BLOCK_SIZE) * PIQE_BLOCK_SIZE
    columns = np.minimum(np.arange(padded_width), width - 1)  # MATLAB padarray(..., 'replicate', 'post')
    window = gaussian_window(7, 7.0 / 6.0)
    context = window.shape[0] // 2
    bands = []
    for top, bottom in row_bands(padded_height, padded_width, multiple=PIQE_BLOCK_SIZE):
        # Rows past the bottom repeat the last one: the padding, then the filter's replicated border.
        rows = np.clip(np.arange(top - context, bottom + context), 0, height - 1)
        band = luma[rows][:, columns].astype(np.float64)
        mscn = mscn_coefficients(band, window)[context:context + bottom - top]
        bands.append(_band_blocks(mscn))
    block_variance, active, distorted, noisy = (np.concatenate(parts, axis=0) for parts in zip(*bands))
    block_scores = distorted * (1.0 - block_variance) + noisy * block_variance
    distortion_sum = float(block_scores[active].sum())
    score = 100.0 * (distortion_sum + SCORE_STABILIZER) / (int(active.sum()) + SCORE_STABILIZER)
    return score, active, distorted, noisy


def _band_blocks(mscn: np.ndarray):
    """``(variance, active, distorted, noisy)`` per 16x16 block of an MSCN band (rows: whole blocks)."""
    blocks = _blocks(mscn, PIQE_BLOCK_SIZE)
    block_variance = blocks.var(axis=(2, 3), ddof=1)
    active = block_variance > ACTIVITY_THRESHOLD

    # Noticeable distortion: the four edges (top, right, bottom, left), each cut into overlapping runs.
    edges = np.stack([blocks[..., 0, :], blocks[..., :, -1], blocks[..., -1, :], blocks[..., :, 0]], axis=-2)
    runs = sliding_window_view(edges, EDGE_SEGMENT_LENGTH, axis=-1)
    run_std = runs.std(axis=-1, ddof=1)
    distorted = active & (run_std < EDGE_SEGMENT_STD_THRESHOLD).any(axis=(-2, -1))

    # Noise: centre-surround deviation ratio against the block's own deviation.
    block_sigma = np.sqrt(block_variance)
    centre = blocks[..., _CENTRE_COLUMNS].reshape(blocks.shape[:2] + (-1,))
    surround = blocks[..., _SURROUND_COLUMNS].reshape(blocks.shape[:2] + (-1,))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = centre.std(axis=-1, ddof=1) / surround.std(axis=-1, ddof=1)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)  # MATLAB: 0/0 counts as 0
        beta = np.abs(block_sigma - ratio) / np.maximum(block_sigma, ratio)
        noisy = active & (block_sigma > 2.0 * beta)
    return block_variance, active, distorted, noisy


def piqe(image) -> float:
    """PIQE score of an image, in [0, 100] (lower is better; 100 for a uniform image).

    Args:
        image: ``uint8`` or float in [0, 1], ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]``.
    """
    return _block_scores(to_luma8(image, conversion="rgb2gray"))[0]
