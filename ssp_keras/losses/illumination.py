"""Illumination uniformity loss L_IU (from StillGAN, the paper's ref. [36]).

Per image and channel: the global mean mu_g; the means M_p of non-overlapping p x p patches; the
difference M_p - mu_g upsampled back to H x W by bicubic interpolation; L_IU is the mean of its
absolute value, averaged over the patch sizes H / 8 and H / 4 (48 and 96 at 384 x 384).
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


def _upsampled_deviation(images: tf.Tensor, patch: int) -> tf.Tensor:
    """|bicubic_up(M_p - mu_g)|, ``[N, H, W, C]``."""
    height, width = images.shape[1], images.shape[2]
    global_mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    patch_means = tf.nn.avg_pool2d(images, ksize=patch, strides=patch, padding="VALID")
    deviation = patch_means - global_mean  # [N, h, w, C]
    if height is None or width is None:
        # Dynamic shapes (rare: training crops are static) fall back to the resize op.
        size = tf.shape(images)[1:3]
        return tf.abs(tf.image.resize(deviation, size, method="bicubic"))
    rows = tf.constant(_bicubic_matrix(height // patch, height))
    cols = tf.constant(_bicubic_matrix(width // patch, width))
    upsampled = tf.einsum("Hh,nhwc,Ww->nHWc", rows, deviation, cols)
    # Patches that do not tile the image exactly leave a border the grid does not cover; resize
    # semantics still map the grid onto the full H x W, as StillGAN's nn.Upsample does.
    return tf.abs(upsampled)


def illumination_uniformity_loss(images: tf.Tensor, patch_divisors: Sequence[int] = (8, 4)) -> tf.Tensor:
    """L_IU of a batch, one value per sample.

    Args:
        images: float ``[N, H, W, C]`` in [0, 1] (the enhanced LQ images G(x)).
        patch_divisors: patch sizes as fractions of the height: 8 -> p = H / 8.

    Returns:
        float32 ``[N]``.
    """
    images = tf.cast(images, tf.float32)
    height = images.shape[1]
    if height is None:
        raise ValueError("illumination_uniformity_loss needs a static image height")
    losses = []
    for divisor in patch_divisors:
        patch = max(1, height // divisor)
        losses.append(tf.reduce_mean(_upsampled_deviation(images, patch), axis=[1, 2, 3]))
    return tf.add_n(losses) / float(len(losses))
