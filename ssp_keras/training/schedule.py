"""The learning-rate schedule of SPEC section 4."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ssp_keras")
class WarmupHalvingSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then halving every few epochs.

    lr(step) = warmup_start + (peak - warmup_start) * step / warmup_steps   for step < warmup_steps
    lr(step) = peak * 0.5 ** floor(epoch / halving_epochs)                   afterwards,
    with epoch = floor(step / steps_per_epoch). ``step`` is the optimiser's iteration count, so a
    resumed run continues exactly where it stopped.

    Paper defaults: 3e-5 -> 1e-4 over 500 iterations, halved every 15 epochs.
    """

    def __init__(
        self,
        warmup_start: float = 3e-5,
        peak: float = 1e-4,
        warmup_steps: int = 500,
        steps_per_epoch: int = 1000,
        halving_epochs: int = 15,
    ):
        if steps_per_epoch < 1 or halving_epochs < 1 or warmup_steps < 0:
            raise ValueError(
                "steps_per_epoch and halving_epochs must be >= 1 and warmup_steps >= 0, got "
                f"{steps_per_epoch}, {halving_epochs}, {warmup_steps}"
            )
        self.warmup_start = float(warmup_start)
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.steps_per_epoch = int(steps_per_epoch)
        self.halving_epochs = int(halving_epochs)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup_fraction = step / float(max(self.warmup_steps, 1))
        warm = self.warmup_start + (self.peak - self.warmup_start) * warmup_fraction
        epoch = ops.floor(step / float(self.steps_per_epoch))
        halvings = ops.floor(epoch / float(self.halving_epochs))
        decayed = self.peak * ops.power(0.5, halvings)
        return ops.where(step < float(self.warmup_steps), warm, decayed)

    def get_config(self):
        return {
            "warmup_start": self.warmup_start,
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "halving_epochs": self.halving_epochs,
        }


def schedule_from_config(train_config, steps_per_epoch: int) -> WarmupHalvingSchedule:
    """The schedule of a ``TrainConfig`` for a run of ``steps_per_epoch`` iterations per epoch."""
    return WarmupHalvingSchedule(
        warmup_start=train_config.lr_warmup_start,
        peak=train_config.lr_peak,
        warmup_steps=train_config.lr_warmup_steps,
        steps_per_epoch=steps_per_epoch,
        halving_epochs=train_config.lr_halving_epochs,
    )
