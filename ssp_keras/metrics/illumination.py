"""Illumination measures of one image: how evenly it is lit, and whether its frame edge stands out.

* :func:`non_uniformity`: the spread of the illumination, std of the means of non-overlapping
  ``block`` x ``block`` tiles divided by the image mean (0 = evenly lit);
* :func:`border_band`: mean of the outer ring of the frame minus the mean of the ring just inside
  it (a bright or dark frame edge left by an enhancer, e.g. from padding).

Images are ``[H, W]`` or ``[H, W, C]`` float arrays with values in [0, 1]; colour images are
reduced to the mean over channels (:func:`as_plane`).
"""

from __future__ import annotations

import numpy as np

from ssp_keras.errors import InputError

#: Side of the non-overlapping tiles of :func:`non_uniformity` (8x8 tiles on a 384x384 frame).
DEFAULT_BLOCK = 48
#: Width of the outer ring of :func:`border_band`, and of the ring just inside it.
BORDER_OUTER = 6
BORDER_INNER = 12


def as_plane(image, name: str = "image") -> np.ndarray:
    """The image as float64 ``[H, W]`` (mean over channels for ``[H, W, C]``)."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3:
        array = array.mean(axis=2)
    if array.ndim != 2 or array.size == 0:
        raise InputError(f"{name}: expected an image [H, W] or [H, W, C], got shape {np.shape(image)}")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: contains NaN or Inf values")
    return array


def block_means(image, block: int = DEFAULT_BLOCK) -> np.ndarray:
    """Means of the non-overlapping ``block`` x ``block`` tiles, ``[rows, columns]``.

    The tile grid is centred: when ``block`` does not divide a side, the remainder is split between
    its two ends and left out. Raises `InputError` when the image is smaller than one tile.
    """
    plane = as_plane(image)
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
    plane = as_plane(image)
    mean = float(plane.mean())
    if mean <= 0.0:
        return float("nan")
    return float(block_means(plane, block).std()) / mean


def border_band(image, outer: int = BORDER_OUTER, inner: int = BORDER_INNER) -> float:
    """Mean of the outer ``outer``-pixel ring minus mean of the ``inner``-pixel ring just inside it.

    Signed (positive: a bright frame edge); 0 for a flat image. The second ring covers the pixels
    whose distance to the nearest edge is in ``[outer, outer + inner)``.
    """
    plane = as_plane(image)
    height, width = plane.shape
    if min(height, width) <= 2 * (outer + inner):
        raise InputError(f"image of {height}x{width} pixels is too small for a {outer}+{inner} pixel border band")
    rows = np.arange(height)[:, None]
    columns = np.arange(width)[None, :]
    distance = np.minimum(np.minimum(rows, height - 1 - rows), np.minimum(columns, width - 1 - columns))
    outer_ring = distance < outer
    inner_ring = (distance >= outer) & (distance < outer + inner)
    return float(plane[outer_ring].mean() - plane[inner_ring].mean())
