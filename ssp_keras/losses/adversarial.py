"""The adversarial criterion adv(d, t) of SPEC section 3."""

from __future__ import annotations

import tensorflow as tf


def adversarial_loss(logits: tf.Tensor, target_is_real: bool, criterion: str = "lsgan") -> tf.Tensor:
    """adv(d, t) for a map of discriminator logits, one value per sample.

    Args:
        logits: float ``[N, h, w, 1]`` PatchGAN logits.
        target_is_real: the target t: True for "real" (1), False for "fake" (0).
        criterion: ``"lsgan"`` (least squares, the default: mean (d - t)^2) or ``"bce"`` (the
            log-loss of the paper's eq. (2): sigmoid cross-entropy on the logits).

    Returns:
        float32 ``[N]``, the loss averaged over the patches of each sample.
    """
    logits = tf.cast(logits, tf.float32)
    target = tf.ones_like(logits) if target_is_real else tf.zeros_like(logits)
    if criterion == "lsgan":
        per_patch = tf.math.squared_difference(logits, target)
    elif criterion == "bce":
        per_patch = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
    else:
        raise ValueError(f"unknown adversarial criterion {criterion!r}; choose 'lsgan' or 'bce'")
    return tf.reduce_mean(per_patch, axis=[1, 2, 3])
