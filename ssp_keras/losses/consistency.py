"""Shading consistency: G's output should not depend on how its input is shaded (issue #21).

The paper's L_IU judges how even G's output is, not at what level, and its discriminator normalises
per sample, so nothing in SSP-Net's losses stops G from evening a shaded frame around its darkened
mean. With x the LQ crop, s a random smooth field of maximum 1 (`ssp_keras.utils.shading`) and
m(.) the per-sample mean, this term asks two things of G(s x):

* the same pattern as G(x):  mean | G(s x) / m(G(s x)) - G(x) / m(G(x)) |  (each divided by its
  mean, so that darkening or brightening both outputs cannot lower it: an absolute L1 of the two
  is lowered most easily by making every output dark, which is what it taught);
* the level of x before s:   | m(G(s x)) / m(x) - 1 |  (the anchor: G lifts what s darkened).

Both parts are relative, in [0, 2]-ish units, whatever the frame's brightness. With the
restoration degradation on, G's inputs are x~ and (s x)~, each degraded with its own draws (shading
before blur and noise, as in a microscope), so the pattern part also asks G to give one answer
for two degradations of the same crop: restoring, not copying noise. Shading x~ itself instead
(measured in training) scaled its noise down where s is dark, and matching G(x~) then taught G to
amplify the noise there: restored segmentations gained speckle.

`restoration_consistency_loss` compares G(x~) with T(x), a frozen teacher's output on the crop
before the restoration degradation, pixel by pixel relative to T(x)'s local level. The structure
term compares G(x~) with x, but its constant C3 hides noise wherever x is dark
(losses.structure), and the pattern part above compares two noisy answers; this one gives G a
noise-free answer to reach. The teacher is frozen (typically the model being fine-tuned): with
G's own G(x) as the target, G learnt in training to leave shaded regions dark, where noise costs
least (planted shading removed fell from 81% to 19-70%; issue #21).
"""

from __future__ import annotations

from keras import ops

#: Added to per-sample means before dividing by them (a black crop has mean 0).
_EPSILON = 1e-3
#: `restoration_consistency_loss`'s tiles (pixels) and what it adds to their level (black tiles
#: weigh an error 100 times, a tile at mid-grey 2 times). Small, so that lifting a region and its
#: noise by k leaves the relative error as it was: at 0.05 dark regions stayed the cheaper place
#: for noise, and G learnt to lift them less (planted shading removed 66% after five epochs).
RESTORATION_BLOCK = 16
RESTORATION_LEVEL_EPSILON = 0.01
#: Added to both tile levels of `tile_gain`.
LEVEL_MATCH_EPSILON = 1e-3


def _mean(images):
    return ops.mean(images, axis=[1, 2, 3], keepdims=True)


def shading_consistency_loss(lq, enhanced_lq, enhanced_shaded):
    """Per-sample shading-consistency loss ``[N]``.

    Args:
        lq: x, ``[N, H, W, C]`` in [0, 1], the LQ crop G's input was made from.
        enhanced_lq: G(x) (or G(x~), its degraded version's), same shape.
        enhanced_shaded: G(s x) (or G((s x)~), s x degraded with draws of its own), same shape.
    """
    lq, enhanced_lq, enhanced_shaded = (ops.cast(image, "float32") for image in (lq, enhanced_lq, enhanced_shaded))
    shaded_mean, plain_mean = _mean(enhanced_shaded) + _EPSILON, _mean(enhanced_lq) + _EPSILON
    pattern = ops.mean(ops.abs(enhanced_shaded / shaded_mean - enhanced_lq / plain_mean), axis=[1, 2, 3])
    level = ops.abs(shaded_mean / (_mean(lq) + _EPSILON) - 1.0)
    return pattern + ops.reshape(level, (-1,))


def restoration_consistency_loss(target, enhanced_degraded, block: int = RESTORATION_BLOCK):
    """Per-sample restoration-consistency loss ``[N]``: ``mean |G(x~) - T| / (L(T) + epsilon)``
    with T the target (the teacher's T(x)) and L(T) its mean over ``block`` x ``block`` tiles.

    T gets no gradient: the term moves G's answer on the degraded crop toward the target, never
    the other way. Each pixel's error is relative to the local level of T, so noise left in a dark
    region costs what it costs in a bright one. Relative to the whole crop's mean instead (as
    `shading_consistency_loss`'s pattern part), dark regions were the cheap place to keep noise,
    and in training G learnt to leave shaded regions dark (planted shading removed fell from 81%
    to 19% in four epochs).

    Args:
        target: T(x), ``[N, H, W, C]`` in [0, 1], H and W multiples of ``block``.
        enhanced_degraded: G(x~), same shape.
    """
    target = ops.stop_gradient(ops.cast(target, "float32"))
    output = ops.cast(enhanced_degraded, "float32")
    return ops.mean(ops.abs(output - target) / (tile_level(target, block) + RESTORATION_LEVEL_EPSILON), axis=[1, 2, 3])


def tile_gain(images, target_level, block: int = RESTORATION_BLOCK):
    """The factor, per ``block`` x ``block`` tile, that brings ``images`` to ``target_level``
    (a `tile_level` of the same shape): ``(target_level + 0.001) / (L(images) + 0.001)``, L the
    tile means (a black tile has level 0). The paired synthetic and texture-keeping terms compare
    G's output after this, so levels stay G's to set."""
    return (target_level + LEVEL_MATCH_EPSILON) / (tile_level(images, block) + LEVEL_MATCH_EPSILON)


def tile_level(images, block: int = RESTORATION_BLOCK):
    """The mean of each ``block`` x ``block`` tile of ``[N, H, W, C]`` images, repeated over the
    tile (same shape; H and W multiples of ``block``)."""
    level = ops.average_pool(images, block, strides=block, padding="valid")
    return ops.repeat(ops.repeat(level, block, axis=1), block, axis=2)
