"""Texture / structure loss L_TE: the structure term of SSIM (StillGAN's structure loss).

For a pair (a, b) and an 11 x 11 Gaussian window of sigma 1.5: local means, variances and
covariance; the structure term s = (sigma_ab + C3) / (sigma_a sigma_b + C3), C3 = (0.03 R)^2 / 2;
the loss is 1 - mean(s). It is 0 for identical images and about 2 for anti-correlated ones
(b = 1 - a), whatever their brightness: it asks G to keep structure, not intensity.

A flat image has sigma_b = sigma_ab = 0 and so s = C3 / C3 = 1: on its own the structure term
rates a featureless output as perfectly "structure-preserving", and together with L_IU (which a
flat image also minimises) a GAN trained on it collapses to grey patches. StillGAN's reference
code avoids this by adding the same Gaussian noise (sigma 0.01) to both images, clipped to [0, 1],
before computing the term; ``noise_stddev`` does the same (the model uses 0.01, as StillGAN).
Flat outputs then score about 0.6 instead of 0.
"""

from __future__ import annotations

from functools import lru_cache

import keras
import numpy as np
from keras import ops

from ssp_keras.utils.gaussian import gaussian_1d

# Keeps sqrt away from 0: on flat regions both variances vanish and d sqrt(v)/dv would be inf.
_VARIANCE_EPSILON = 1e-8


@lru_cache(maxsize=16)
def _gaussian_taps(window: int, sigma: float) -> np.ndarray:
    """`gaussian_1d` as float32, the dtype of the depthwise kernels."""
    return gaussian_1d(window, sigma).astype(np.float32)


def gaussian_filter_valid(x, window: int, sigma: float):
    """Separable Gaussian filter per channel, 'valid' like SSIM: ``[N, H-w+1, W-w+1, C]``."""
    channels = x.shape[-1]
    kernel = _gaussian_taps(window, sigma)
    vertical = np.tile(kernel.reshape(window, 1, 1, 1), (1, 1, channels, 1))
    horizontal = np.tile(kernel.reshape(1, window, 1, 1), (1, 1, channels, 1))
    x = ops.depthwise_conv(x, vertical, strides=1, padding="valid")
    return ops.depthwise_conv(x, horizontal, strides=1, padding="valid")


def structure_map(a, b, window: int = 11, sigma: float = 1.5, data_range: float = 1.0):
    """The SSIM structure term s per pixel and channel, ``[N, H-w+1, W-w+1, C]`` in [-1, 1]."""
    a = ops.cast(a, "float32")
    b = ops.cast(b, "float32")
    # One filtering pass over the five moment images instead of five passes.
    moments = gaussian_filter_valid(ops.concatenate([a, b, a * a, b * b, a * b], axis=-1), window, sigma)
    mean_a, mean_b, mean_aa, mean_bb, mean_ab = ops.split(moments, 5, axis=-1)
    variance_a = ops.maximum(mean_aa - mean_a * mean_a, 0.0)
    variance_b = ops.maximum(mean_bb - mean_b * mean_b, 0.0)
    covariance = mean_ab - mean_a * mean_b
    c3 = (0.03 * data_range) ** 2 / 2.0
    std_a = ops.sqrt(variance_a + _VARIANCE_EPSILON)
    std_b = ops.sqrt(variance_b + _VARIANCE_EPSILON)
    return (covariance + c3) / (std_a * std_b + c3)


def structure_loss(a, b, window: int = 11, sigma: float = 1.5, data_range: float = 1.0, noise_stddev: float = 0.0,
                   seed=None):
    """1 - mean(structure term) for each pair, float32 ``[N]``.

    Args:
        a, b: float ``[N, H, W, C]`` in [0, data_range], H and W >= ``window``.
        noise_stddev: standard deviation of the Gaussian noise added to both images (the same
            draw), as StillGAN does; 0 gives the plain term.
        seed: a ``keras.random.SeedGenerator`` (or int) for the noise.
    """
    if noise_stddev > 0:
        a = ops.cast(a, "float32")
        b = ops.cast(b, "float32")
        noise = keras.random.normal(ops.shape(a), stddev=noise_stddev, seed=seed)
        a = ops.clip(a + noise, 0.0, data_range)
        b = ops.clip(b + noise, 0.0, data_range)
    return 1.0 - ops.mean(structure_map(a, b, window, sigma, data_range), axis=[1, 2, 3])
