"""The adversarial criterion adv(d, t) of SPEC section 3."""

from __future__ import annotations

from keras import ops


def adversarial_loss(logits, target_is_real: bool, criterion: str = "lsgan"):
    """adv(d, t) for a map of discriminator logits, one value per sample.

    Args:
        logits: float ``[N, h, w, 1]`` PatchGAN logits.
        target_is_real: the target t: True for "real" (1), False for "fake" (0).
        criterion: ``"lsgan"`` (least squares, the default: mean (d - t)^2) or ``"bce"`` (the
            log-loss of the paper's eq. (2): sigmoid cross-entropy on the logits).

    Returns:
        float32 ``[N]``, the loss averaged over the patches of each sample.
    """
    logits = ops.cast(logits, "float32")
    target = 1.0 if target_is_real else 0.0
    if criterion == "lsgan":
        per_patch = ops.square(logits - target)
    elif criterion == "bce":
        # -t log(sigmoid(d)) - (1 - t) log(1 - sigmoid(d)), in the overflow-free form
        # max(d, 0) - d t + log(1 + exp(-|d|)) (what tf.nn.sigmoid_cross_entropy_with_logits computes).
        per_patch = ops.relu(logits) - logits * target + ops.log1p(ops.exp(-ops.abs(logits)))
    else:
        raise ValueError(f"unknown adversarial criterion {criterion!r}; choose 'lsgan' or 'bce'")
    return ops.mean(per_patch, axis=[1, 2, 3])
