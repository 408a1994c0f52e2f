"""Texture keeping: on a crop that carries no added degradation, G keeps the frame's own fine
texture (``loss.texture_keeping``, issue #21).

The restoration terms teach G to remove the noise and blur the degradation model adds. A real
frame has a fine grain of its own (speckle, keratocyte texture), and nothing in those terms tells
added noise from it: a generator wide enough to denoise (stage 9 of the bundled model) also
turned a plain frame's speckle into a soft mottle (fine-detail correlation 0.93, NIQE 4.7 on the
held-out frames), and an identity term on the HQ frames, which carry grain too, stopped the
denoising altogether. This term shows G the plain crop x itself and asks that G(x) keep x's fine
band F(.) = . - Gaussian(., sigma 3 px): the band the benchmark's fine-detail correlation reads.
Paired with the restoration terms, what G may remove is what the degradation adds.

Levels are G's to set (it lifts shading): G's band is first brought to x's level tile by tile,
and errors are relative to x's local level, as in `ssp_keras.losses.restoration`, so texture in a
dark region counts as much as in a bright one.
"""

from __future__ import annotations

import math

from keras import ops

from ssp_keras.losses.consistency import RESTORATION_BLOCK, RESTORATION_LEVEL_EPSILON, tile_gain, tile_level
from ssp_keras.losses.structure import gaussian_filter_valid

#: The fine band's Gaussian (pixels): the benchmark's fine-detail sigma (metrics.full_reference).
TEXTURE_SIGMA = 3.0


def fine_band(images, sigma: float = TEXTURE_SIGMA):
    """``images - GaussianBlur(images, sigma)``, reflected borders, float32 ``[N, H, W, C]``
    (H, W larger than 3 sigma)."""
    images = ops.cast(images, "float32")
    radius = int(math.ceil(3.0 * sigma))
    padded = ops.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="reflect")
    blurred = gaussian_filter_valid(padded, 2 * radius + 1, sigma)
    return images - blurred


def texture_keeping_loss(plain, enhanced_plain, block: int = RESTORATION_BLOCK, sigma: float = TEXTURE_SIGMA):
    """Per-sample texture-keeping loss ``[N]``:
    ``mean |F(G(x)) L(x) / L(G(x)) - F(x)| / (L(x) + 0.01)``, F the fine band, L the mean over
    ``block`` x ``block`` tiles.

    Args:
        plain: x, ``[N, H, W, C]`` in [0, 1], the crop without the restoration degradation, H and
            W multiples of ``block``; a target (no gradient flows into it).
        enhanced_plain: G(x), same shape.
    """
    plain = ops.stop_gradient(ops.cast(plain, "float32"))
    output = ops.cast(enhanced_plain, "float32")
    plain_level = tile_level(plain, block)
    error = ops.abs(fine_band(output, sigma) * tile_gain(output, plain_level, block) - fine_band(plain, sigma))
    return ops.mean(error / (plain_level + RESTORATION_LEVEL_EPSILON), axis=[1, 2, 3])
