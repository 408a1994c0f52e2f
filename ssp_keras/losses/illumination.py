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
import tensorflow as tf


@lru_cache(maxsize=64)
def _bicubic_matrix(source: int, target: int) -> np.ndarray:
    """``[target, source]`` matrix U with U @ v == 1-D bicubic resize of v (tf.image.resize's).

    Bicubic resizing is separable and linear, so the upsampling of the tiny patch-mean grid is two
    small matrix products: cheaper than ``tf.image.resize`` on the full image, differentiable,
    and XLA-friendly.
    """
    basis = np.eye(source, dtype=np.float32).reshape(source, source, 1, 1)
    with tf.init_scope():  # computed eagerly, also while a tf.function is being traced
        resized = tf.image.resize(basis, (target, 1), method="bicubic")  # [source, target, 1, 1]
        return resized.numpy().reshape(source, target).T


def _patch_means(images: tf.Tensor, patch: int) -> tf.Tensor:
    """Means of the p x p patches tiling ``[N, H, W, C]`` from the top-left corner: ``[N, ceil(H/p), ceil(W/p), C]``.

    The last row and column of patches may be partial; each is the mean of the pixels it holds
    (TensorFlow's "SAME" pooling would centre the grid instead, splitting the remainder).
    """
    height, width = images.shape[1], images.shape[2]
    rows, cols = -(-height // patch), -(-width // patch)
    extra_rows, extra_cols = rows * patch - height, cols * patch - width
    if not extra_rows and not extra_cols:
        return tf.nn.avg_pool2d(images, ksize=patch, strides=patch, padding="VALID")
    padded = tf.pad(images, [[0, 0], [0, extra_rows], [0, extra_cols], [0, 0]])
    coverage = np.zeros((rows * patch, cols * patch), np.float32)
    coverage[:height, :width] = 1.0
    share = coverage.reshape(rows, patch, cols, patch).mean(axis=(1, 3))  # real pixels per patch
    return tf.nn.avg_pool2d(padded, ksize=patch, strides=patch, padding="VALID") / share[None, :, :, None]


def _upsampled_deviation(images: tf.Tensor, patch: int) -> tf.Tensor:
    """|bicubic_up(M_p - mu_g)|, ``[N, H, W, C]``."""
    height, width = images.shape[1], images.shape[2]
    global_mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    patch_means = _patch_means(images, patch)
    deviation = patch_means - global_mean  # [N, h, w, C]
    if height is None or width is None:
        # Dynamic shapes (rare: training crops are static) fall back to the resize op.
        size = tf.shape(images)[1:3]
        return tf.abs(tf.image.resize(deviation, size, method="bicubic"))
    rows = tf.constant(_bicubic_matrix(-(-height // patch), height))
    cols = tf.constant(_bicubic_matrix(-(-width // patch), width))
    upsampled = tf.einsum("Hh,nhwc,Ww->nHWc", rows, deviation, cols)
    return tf.abs(upsampled)


def illumination_uniformity_loss(images: tf.Tensor, patch_sizes: Sequence[int] = (48, 96)) -> tf.Tensor:
    """L_IU of a batch, one value per sample.

    Args:
        images: float ``[N, H, W, C]`` in [0, 1] (the enhanced LQ images G(x)), H and W static.
        patch_sizes: patch sides in pixels (each at most min(H, W)).

    Returns:
        float32 ``[N]``.
    """
    images = tf.cast(images, tf.float32)
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        raise ValueError("illumination_uniformity_loss needs a static image height and width")
    for patch in patch_sizes:
        if not 1 <= patch <= min(height, width):
            raise ValueError(f"illumination patch size {patch} does not fit images of {height}x{width}")
    losses = [tf.reduce_mean(_upsampled_deviation(images, int(patch)), axis=[1, 2, 3]) for patch in patch_sizes]
    return tf.add_n(losses) / float(len(losses))
