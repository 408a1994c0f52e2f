"""CS-Net's training loss: mean squared error plus soft Dice."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="ssp_keras")
def mse_dice_loss(labels, probabilities):
    """CS-Net's training loss: mean squared error plus soft Dice loss, one value per sample.

    labels, probabilities: ``[N, H, W, 1]`` in [0, 1]. Dice is ``(2 sum(p y) + 1) / (sum(p) +
    sum(y) + 1)`` per sample (the +1 keeps empty crops defined); the loss is ``MSE + 1 - Dice``.
    """
    labels = keras.ops.cast(labels, probabilities.dtype)
    squared_error = keras.ops.mean(keras.ops.square(probabilities - labels), axis=(1, 2, 3))
    overlap = keras.ops.sum(probabilities * labels, axis=(1, 2, 3))
    total = keras.ops.sum(probabilities, axis=(1, 2, 3)) + keras.ops.sum(labels, axis=(1, 2, 3))
    dice = (2.0 * overlap + 1.0) / (total + 1.0)
    return squared_error + 1.0 - dice


__all__ = ["mse_dice_loss"]
