"""Padding to the generator's size multiple, and tiles blended back into one image.

The generator only accepts heights and widths that are multiples of 32 (it downsamples five
times). Users never resize: `pad_to_multiple` pads the bottom and right edges by reflection up to
the next multiple, the generator runs, and `crop_to_size` cuts the padding off again. The same two
functions run inside the exported SavedModel (`ssp_keras.serving.export`), so a served model and
``ssp-net enhance`` compute the same thing.

Images larger than `AUTO_TILE_PIXELS` are enhanced tile by tile (`blend_tiles`): overlapping
tiles of one fixed shape (so the graph is traced once), each weighted by a raised-cosine ramp over
the overlap so seams do not show, summed, and divided by the summed weights. The weights are
separable, so the normaliser is two 1-D arrays and memory stays at about two copies of the image
(input and output) plus one tile's activations, whatever the image size. `blend_tiles` takes any
tile function: the local generator (`ssp_keras.inference.enhance`) or a server
(`ssp_keras.serving.client`).
"""

from __future__ import annotations

from typing import Callable, List, Sequence

import numpy as np

#: The generator downsamples five times: inputs must be multiples of 2**5 (the generator's own).
from ssp_keras.defaults import GENERATOR_SIZE_MULTIPLE as PAD_MULTIPLE  # noqa: E402
#: Images with more pixels than this are tiled automatically (about 4 megapixels).
AUTO_TILE_PIXELS = 2048 * 2048
#: Side of the square tiles used when tiling (a multiple of 32, so tiles need no padding).
DEFAULT_TILE_SIZE = 1024
#: Pixels shared by neighbouring tiles; the blending ramp spans this width.
DEFAULT_TILE_OVERLAP = 64


# ------------------------------------------------------------------------------ pad and crop
def _reflect_indices(size, padded_size):
    """Source indices in ``[0, size)`` for positions ``[0, padded_size)`` (an int32 vector).

    Positions past the end are mirrored about the last sample without repeating it (``abcd|cba``,
    numpy's and TensorFlow's "reflect"). When the padding is longer than the image, the mirroring
    repeats (``ab|abab``), which is what ``np.pad(mode="reflect")`` does too; a 1-pixel side is
    repeated (edge padding), the only choice there. ``size`` and ``padded_size`` are ints, or
    scalar tensors in a shape-generic TensorFlow graph.
    """
    from keras import ops

    positions = ops.arange(padded_size, dtype="int32")
    period = ops.maximum(2 * (size - 1), 1)
    folded = positions % period
    return ops.where(folded < size, folded, period - folded)


def pad_to_multiple(images, multiple: int = PAD_MULTIPLE):
    """Reflect-pads the bottom and right edges of ``images`` up to multiples of ``multiple``.

    images: ``[N, H, W, C]`` tensor or array, any dtype, H and W >= 1 and possibly unknown at
      trace time (this runs inside the exported serving graph).
    Returns ``(padded [N, H', W', C], (H, W))`` with H', W' the next multiples of ``multiple``;
    ``(H, W)`` (ints, or scalar int32 tensors when unknown at trace time) for `crop_to_size`.

    Plain reflect padding needs padding < size, which fails for images smaller than the padding
    (a 5-pixel-high strip needs 27 rows); the gather in `_reflect_indices` mirrors repeatedly
    instead (numpy's behaviour), and equals ``tf.pad(mode="REFLECT")`` wherever that one works.
    """
    from keras import ops

    images = ops.convert_to_tensor(images)
    _, height, width, _ = ops.shape(images)
    padded_height = (height + multiple - 1) // multiple * multiple
    padded_width = (width + multiple - 1) // multiple * multiple
    images = ops.take(images, _reflect_indices(height, padded_height), axis=1)
    images = ops.take(images, _reflect_indices(width, padded_width), axis=2)
    return images, (height, width)


def crop_to_size(images, size):
    """``images[:, :H, :W, :]`` for ``size = (H, W)`` as returned by `pad_to_multiple`."""
    height, width = size
    return images[:, :height, :width, :]


# ------------------------------------------------------------------------------ tiling
def tile_starts(length: int, tile: int, overlap: int) -> List[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``[0, length)`` with >= ``overlap`` shared.

    The last tile ends exactly at ``length`` (it may overlap its neighbour by more), so every tile
    has the same size and the graph is traced once. One tile when ``length <= tile``.
    """
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp_weights(starts: Sequence[int], tile: int, length: int, overlap: int) -> List[np.ndarray]:
    """1-D blending weights of each tile along one axis: raised-cosine ramps over the overlaps.

    A side that touches the image border keeps weight 1 (nothing to blend with); a side shared
    with a neighbour rises from near 0 to 1 over ``overlap`` pixels. Weights are strictly
    positive, so the summed normaliser never divides by zero.
    """
    extent = min(tile, length)
    ramp_length = min(overlap, extent // 2)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_length, dtype=np.float64) + 0.5) / max(ramp_length, 1))
    weights = []
    for index, start in enumerate(starts):
        weight = np.ones(extent, dtype=np.float64)
        if ramp_length and index > 0:
            weight[:ramp_length] = ramp
        if ramp_length and index < len(starts) - 1:
            weight[extent - ramp_length:] = np.minimum(weight[extent - ramp_length:], ramp[::-1])
        weights.append(weight.astype(np.float32))
    return weights


def blend_tiles(
    image: np.ndarray,
    enhance_tile: Callable[[np.ndarray], np.ndarray],
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_TILE_OVERLAP,
) -> np.ndarray:
    """Applies ``enhance_tile`` to overlapping tiles of ``image`` and blends the results.

    image: float32 ``[H, W, C]``. enhance_tile: maps float32 ``[h, w, C]`` to the same shape
      (local generator, or a remote server in `ssp_keras.serving.client`); every call gets the
      same ``(min(tile_size, H), min(tile_size, W))`` shape.
    Returns float32 ``[H, W, C]``. The output is accumulated in place; the normaliser is the outer
    product of two 1-D weight sums (the tile grid is regular), so no image-sized weight map exists.
    """
    if tile_size < 1 or not 0 <= overlap < tile_size:
        raise ValueError(f"need tile_size >= 1 and 0 <= overlap < tile_size, got {tile_size} and {overlap}")
    height, width, channels = image.shape
    row_starts = tile_starts(height, tile_size, overlap)
    column_starts = tile_starts(width, tile_size, overlap)
    row_weights = _ramp_weights(row_starts, tile_size, height, overlap)
    column_weights = _ramp_weights(column_starts, tile_size, width, overlap)
    tile_height, tile_width = min(tile_size, height), min(tile_size, width)

    output = np.zeros((height, width, channels), dtype=np.float32)
    row_sum = np.zeros(height, dtype=np.float32)
    column_sum = np.zeros(width, dtype=np.float32)
    for top, weight in zip(row_starts, row_weights):
        row_sum[top:top + tile_height] += weight
    for left, weight in zip(column_starts, column_weights):
        column_sum[left:left + tile_width] += weight

    for top, row_weight in zip(row_starts, row_weights):
        for left, column_weight in zip(column_starts, column_weights):
            tile = image[top:top + tile_height, left:left + tile_width]
            enhanced = np.asarray(enhance_tile(tile), dtype=np.float32)
            weight = (row_weight[:, None] * column_weight[None, :])[:, :, None]
            output[top:top + tile_height, left:left + tile_width] += enhanced * weight
    # Normalise one band of rows at a time: a full [H, W] normaliser would cost another image.
    for top in range(0, height, tile_height):
        band = slice(top, top + tile_height)
        output[band] /= (row_sum[band, None] * column_sum[None, :])[:, :, None]
    return np.clip(output, 0.0, 1.0, out=output)
