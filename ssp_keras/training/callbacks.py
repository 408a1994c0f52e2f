"""Callbacks of a training run: crash-safe state checkpoints, a NaN guard, learning-rate and
image-grid logging for TensorBoard."""

from __future__ import annotations

import io
import json
import math
import os
import re

from typing import Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from ssp_keras.errors import NonFiniteTrainingError
from ssp_keras.utils.files import atomic_write_bytes
from ssp_keras.utils.variables import non_finite_variables

STATE_PATTERN = re.compile(r"^state-epoch(\d{4,})\.npz$")


class NonFiniteLossError(NonFiniteTrainingError):
    """A loss, weight or optimiser variable became NaN or Inf; training was stopped."""


def describe_non_finite(names: Sequence[str]) -> str:
    """``"3 variables are NaN or infinite (first: 'generator/conv/kernel')"``."""
    count = f"{len(names)} variable{'s' if len(names) != 1 else ''} {'are' if len(names) != 1 else 'is'}"
    return f"{count} NaN or infinite (first: '{names[0]}')"


#: What to try when training diverges (the end of every non-finite message).
_DIVERGENCE_ADVICE = ("Lower the learning rate (train.lr_peak, train.lr_warmup_start), check the input images, "
                      "or train in float32 (--precision float32)")


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training as soon as anything of the training state is NaN or Inf, before it is saved.

    After every batch it checks the losses in the logs (all of them: Keras' `TerminateOnNaN`
    watches only ``loss``; a GAN has several). At the end of every epoch, first among the
    callbacks, it checks every weight of G and D and every optimiser variable: an update can make
    weights NaN while the losses that led to it were finite, and nothing of that epoch (history
    row, previews, checkpoint) may be recorded then. It raises `NonFiniteLossError` naming what
    went non-finite and when; the checkpoints in ``checkpoint_dir`` are then all finite (the
    checkpoint callback checks again before writing).
    """

    def __init__(self, check_every: int = 1, checkpoint_dir: Optional[str] = None):
        super().__init__()
        self.check_every = max(1, int(check_every))
        self.checkpoint_dir = checkpoint_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or batch % self.check_every:
            return
        for name, value in logs.items():
            value = float(value)
            if not math.isfinite(value):
                self._stop(f"loss '{name}' became {value} at epoch {self._epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        names = non_finite_variables(_state_variables(self.model, paths=True))
        if names:
            self._stop(f"at the end of epoch {epoch + 1}, {describe_non_finite(names)}")

    def _stop(self, what: str):
        self.model.stop_training = True
        states = list_states(self.checkpoint_dir) if self.checkpoint_dir else []
        kept = (f"the last checkpoint, {os.path.basename(states[-1])}, is finite and kept" if states
                else "no checkpoint was written")
        raise NonFiniteLossError(f"training stopped: {what}; nothing of this epoch was saved ({kept}). "
                                 f"{_DIVERGENCE_ADVICE}.")


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``generator_lr`` and ``discriminator_lr`` to the epoch logs (and so to TensorBoard)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for name in ("generator", "discriminator"):
            optimizer = getattr(self.model, f"{name}_optimizer")
            logs[f"{name}_lr"] = float(_current_learning_rate(optimizer))


def _current_learning_rate(optimizer):
    rate = optimizer.learning_rate
    return rate(optimizer.iterations) if callable(rate) else rate


class TrainingStateCheckpoint(keras.callbacks.Callback):
    """Saves everything needed to resume after a crash, atomically, after every epoch.

    One ``state-epochNNNN.npz`` per epoch in ``directory`` (the last ``keep`` are kept): the
    weights of G and D (trainable and not: batch-norm statistics, the fake pool), both optimisers'
    variables (iterations, so the learning-rate schedule resumes at the same position, and Adam's
    moments) and the epoch number. Written to a temporary file and renamed, so a SIGKILL at any
    moment leaves the previous epoch's state readable.

    Keras' `BackupAndRestore` saves model weights only, not the state of optimisers that `compile`
    does not own, hence this callback.
    """

    def __init__(self, directory: str, keep: int = 2):
        super().__init__()
        self.directory = directory
        self.keep = max(1, int(keep))

    def on_epoch_end(self, epoch, logs=None):
        path = os.path.join(self.directory, f"state-epoch{epoch + 1:04d}.npz")
        save_training_state(self.model, path, epoch + 1, logs)
        for old in list_states(self.directory)[: -self.keep]:
            os.remove(old)


def _state_variables(model, paths: bool = False):
    """Every variable a resumed run needs, with stable names, in a stable order.

    paths: name them by what they are (``generator: stem/conv/kernel``) instead of the stable
    ``generator/00012`` keys of the checkpoint files.
    """
    groups = {
        "generator": model.generator.weights,
        "discriminator": model.discriminator.weights,
        "generator_optimizer": model.generator_optimizer.variables,
        "discriminator_optimizer": model.discriminator_optimizer.variables,
    }
    if model.fake_pool is not None:
        groups["fake_pool"] = model.fake_pool.weights
    # The random streams (G's input degradation and noise, the pool's draws): without them a resumed
    # run would repeat the draws of its first epochs.
    groups["seeds"] = _seed_states(model)
    return [
        (f"{group.replace('_', ' ')}: {variable.path}" if paths else f"{group}/{index:05d}", variable)
        for group, variables in groups.items() for index, variable in enumerate(variables)
    ]


def _seed_states(model):
    """Every `keras.random.SeedGenerator` state the model holds, once each, in tracking order."""
    seen = set()
    states = []
    for variable in model.variables:
        if variable.path.endswith("seed_generator_state") and id(variable) not in seen:
            seen.add(id(variable))
            states.append(variable)
    return states


def save_training_state(model, path: str, epoch: int, logs=None) -> None:
    """Writes the state `restore_training_state` reads, atomically; never a non-finite one.

    Raises `NonFiniteLossError` (and writes nothing) when a weight or optimiser variable is NaN or
    infinite: a checkpoint is only ever a state worth resuming from.
    """
    bad = non_finite_variables(_state_variables(model, paths=True))  # the end-of-epoch guard's check
    if bad:
        raise NonFiniteLossError(f"not writing the checkpoint {path} of epoch {epoch}: {describe_non_finite(bad)}. "
                                 f"{_DIVERGENCE_ADVICE}.")
    arrays = {name: np.asarray(keras.ops.convert_to_numpy(variable)) for name, variable in _state_variables(model)}
    arrays["__epoch__"] = np.asarray(epoch, dtype=np.int64)
    arrays["__logs__"] = np.asarray(json.dumps({k: float(v) for k, v in (logs or {}).items()}))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def list_states(directory: str) -> list[str]:
    """State files in ``directory``, oldest epoch first."""
    if not os.path.isdir(directory):
        return []
    found = sorted(
        (int(match.group(1)), name)
        for name in os.listdir(directory)
        if (match := STATE_PATTERN.match(name))
    )
    return [os.path.join(directory, name) for _, name in found]


def restore_training_state(model, directory: str) -> int:
    """Loads the newest state in ``directory`` into a compiled model; returns its epoch (0 if none).

    The model's optimisers must be built (``SSPNet.compile`` builds them).
    """
    states = list_states(directory)
    if not states:
        return 0
    path = states[-1]
    with np.load(path) as saved:
        # Checkpoints written before the seeds were saved resume with fresh random streams.
        variables = [(name, variable) for name, variable in _state_variables(model)
                     if name in saved.files or not name.startswith("seeds/")]
        missing = [name for name, _ in variables if name not in saved.files]
        if missing:
            raise ValueError(f"checkpoint {path} does not match this model (missing {missing[0]}); "
                             "was it written with another configuration?")
        for name, variable in variables:
            value = saved[name]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"checkpoint {path}: {name} has shape {value.shape}, the model expects "
                                 f"{tuple(variable.shape)}; was it written with another configuration?")
            variable.assign(value)
        return int(saved["__epoch__"])


class ImageGridLogger(keras.callbacks.Callback):
    """Every epoch: a grid LQ | G(LQ) | HQ | G(HQ) of fixed preview images (whole frames, any size:
    enhanced as ``ssp-net enhance`` would, padded to a multiple of 32 and cropped back), drawn by
    `preview_grid` (the report's `comparison_grid`, with the column names in a header).

    Written to TensorBoard (``log_dir``, as image ``enhancement``) and, when ``png_directory`` is
    given, as ``epochNNNN.png`` there, for users without TensorBoard.
    """

    def __init__(self, lq: np.ndarray, hq: np.ndarray, log_dir: str, png_directory: str | None = None):
        super().__init__()
        self.lq = np.asarray(lq, np.float32)
        self.hq = np.asarray(hq, np.float32)
        self.log_dir = log_dir
        self.png_directory = png_directory
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        from ssp_keras.inference.enhance import enhance_array

        generator = self.model.generator
        grid = preview_grid(self.lq, enhance_array(generator, self.lq), self.hq, enhance_array(generator, self.hq))
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "images"))
        with self._writer.as_default():
            tf.summary.image("enhancement LQ | G(LQ) | HQ | G(HQ)", grid[None], step=epoch + 1)
        self._writer.flush()
        if self.png_directory:
            png = tf.io.encode_png(tf.image.convert_image_dtype(grid, tf.uint8, saturate=True)).numpy()
            atomic_write_bytes(os.path.join(self.png_directory, f"epoch{epoch + 1:04d}.png"), png)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


#: The columns of the training previews.
PREVIEW_COLUMNS = ("LQ", "G(LQ)", "HQ", "G(HQ)")


def preview_grid(lq: np.ndarray, enhanced_lq: np.ndarray, hq: np.ndarray, enhanced_hq: np.ndarray) -> np.ndarray:
    """LQ | G(LQ) | HQ | G(HQ) (batches ``[N, H, W, C]``): one row per preview frame, a header of
    the column names, cells as large as the frames. RGB float32 ``[height, width, 3]`` in [0, 1]."""
    from ssp_keras.utils.image_grid import comparison_grid

    cell = max(lq.shape[1:3] + hq.shape[1:3])
    rows = [list(frames) for frames in zip(lq, enhanced_lq, hq, enhanced_hq)]
    return comparison_grid(rows, PREVIEW_COLUMNS, cell)
