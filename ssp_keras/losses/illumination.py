"""Illumination uniformity loss L_IU (from StillGAN, the paper's ref. [36]).

Per image and channel: the global mean mu_g; the means M_p of non-overlapping p x p patches; the
difference M_p - mu_g upsampled back to H x W by bicubic interpolation; L_IU is the mean of its
absolute value, averaged over the patch sizes (StillGAN's 48 and 96 pixels: H / 8 and H / 4 of a
384 x 384 frame). Patch sizes are in pixels, so a training crop smaller than the frame is still
judged on frame-scale shading. Where p does not divide the image, the last row and column of
patches are partial (averaged over the pixels they hold).
A uniformly lit image scores 0; a vignetted or ramped one scores its deviation from flat.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from keras import ops

#: TensorFlow's bicubic resize (``tf.image.resize(method="bicubic")``, the upsampling StillGAN
#: uses) takes its Keys-cubic weights (a = -0.5) from a table of this many steps per pixel.
_BICUBIC_TABLE_SIZE = 1024
_KEYS_A = -0.5


@lru_cache(maxsize=1)
def _bicubic_table() -> np.ndarray:
    """``[TABLE + 1, 2]`` float32: Keys' weight at distance x and at 1 + x, for x = i / TABLE."""
    x = np.arange(_BICUBIC_TABLE_SIZE + 1, dtype=np.float32) / np.float32(_BICUBIC_TABLE_SIZE)
    a = np.float32(_KEYS_A)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    return np.stack([near, far], axis=1).astype(np.float32)


@lru_cache(maxsize=64)
def _bicubic_matrix(source: int, target: int) -> np.ndarray:
    """``[target, source]`` matrix U with U @ v == 1-D bicubic resize of v, TensorFlow's exactly.

    Bicubic resizing is separable and linear, so the upsampling of the tiny patch-mean grid is two
    small matrix products: cheaper than a resize op on the full image, differentiable, and the
    same on every backend. The weights follow TensorFlow's ``ResizeBicubic`` with half-pixel
    centres (what ``tf.image.resize`` runs): sample position ``(o + 0.5) * source / target - 0.5``
    in float32, Keys' kernel from a table of 1/1024-pixel steps, taps outside the signal weighted 0
    and the rest renormalised to sum 1 (tested against ``tf.image.resize``).
    """
    table = _bicubic_table()
    scale = np.float32(source) / np.float32(target)
    matrix = np.zeros((target, source), np.float32)
    for out in range(target):
        position = (np.float32(out) + np.float32(0.5)) * scale - np.float32(0.5)
        start = int(np.floor(position))
        offset = int(np.rint((position - np.float32(start)) * np.float32(_BICUBIC_TABLE_SIZE)))
        back = _BICUBIC_TABLE_SIZE - offset
        taps = ((start - 1, table[offset, 1]), (start, table[offset, 0]),
                (start + 1, table[back, 0]), (start + 2, table[back, 1]))
        inside = [(index, weight) for index, weight in taps if 0 <= index < source]
        total = np.float32(sum(weight for _, weight in inside))
        for index, weight in inside:
            matrix[out, index] += weight / total if abs(total) >= 1000 * np.finfo(np.float32).tiny else weight
    return matrix


def _patch_means(images, patch: int):
    """Means of the p x p patches tiling ``[N, H, W, C]`` from the top-left corner: ``[N, ceil(H/p), ceil(W/p), C]``.

    The last row and column of patches may be partial; each is the mean of the pixels it holds
    ("same" pooling would centre the grid instead, splitting the remainder).
    """
    height, width = images.shape[1], images.shape[2]
    rows, cols = -(-height // patch), -(-width // patch)
    extra_rows, extra_cols = rows * patch - height, cols * patch - width
    if not extra_rows and not extra_cols:
        return ops.average_pool(images, patch, strides=patch, padding="valid")
    padded = ops.pad(images, [[0, 0], [0, extra_rows], [0, extra_cols], [0, 0]])
    coverage = np.zeros((rows * patch, cols * patch), np.float32)
    coverage[:height, :width] = 1.0
    share = coverage.reshape(rows, patch, cols, patch).mean(axis=(1, 3))  # real pixels per patch
    return ops.average_pool(padded, patch, strides=patch, padding="valid") / share[None, :, :, None]


def _upsampled_deviation(images, patch: int):
    """|bicubic_up(M_p - mu_g)|, ``[N, H, W, C]`` (H and W static)."""
    height, width = images.shape[1], images.shape[2]
    global_mean = ops.mean(images, axis=[1, 2], keepdims=True)
    deviation = _patch_means(images, patch) - global_mean  # [N, h, w, C]
    rows = ops.convert_to_tensor(_bicubic_matrix(-(-height // patch), height))
    cols = ops.convert_to_tensor(_bicubic_matrix(-(-width // patch), width))
    return ops.abs(ops.einsum("Hh,nhwc,Ww->nHWc", rows, deviation, cols))


def illumination_uniformity_loss(images, patch_sizes: Sequence[int] = (48, 96)):
    """L_IU of a batch, one value per sample.

    Args:
        images: float ``[N, H, W, C]`` in [0, 1] (the enhanced LQ images G(x)), H and W static.
        patch_sizes: patch sides in pixels (each at most min(H, W)).

    Returns:
        float32 ``[N]``.
    """
    images = ops.cast(images, "float32")
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError("illumination_uniformity_loss needs a static image height and width")
    for patch in patch_sizes:
        if not 1 <= patch <= min(height, width):
            raise ValueError(f"illumination patch size {patch} does not fit images of {height}x{width}")
    losses = [ops.mean(_upsampled_deviation(images, int(patch)), axis=[1, 2, 3]) for patch in patch_sizes]
    return sum(losses[1:], losses[0]) / float(len(losses))
