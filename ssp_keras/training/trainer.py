"""Training SSP-Net from two folders of unpaired images, resumably.

`train` is what ``ssp-net train`` runs: it validates the images before any model is built,
chooses the distribution strategy, builds model, optimisers and metrics inside its scope,
restores the newest checkpoint of the run directory (so re-running the same command resumes,
also after a SIGKILL), and calls ``model.fit``.

A run directory holds::

    config.json        the resolved configuration (and, under "resolved", the replica count,
                       global batch and steps per epoch that this run used)
    checkpoints/       state-epochNNNN.npz: weights and optimiser state after each epoch
    logs/              TensorBoard: losses, learning rates, image grids LQ | G(LQ) | HQ | G(HQ)
    previews/          the same grids as PNG
    history.csv        one row of losses per epoch
    generator.keras    the final generator
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from typing import Optional, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from ssp_keras.config import SSPNetConfig
from ssp_keras.errors import InputError
from ssp_keras.utils.files import atomic_save, atomic_write_bytes

log = logging.getLogger(__name__)

PathList = Union[str, Sequence[str]]


@dataclasses.dataclass
class TrainResult:
    """What a finished (or already complete) run left behind."""

    run_dir: str
    generator_path: Optional[str]
    initial_epoch: int
    epochs: int
    history: dict
    replicas: int
    global_batch_size: int
    steps_per_epoch: int
    skipped_files: list


def corn_folders(root: str) -> tuple[str, str]:
    """(LQ, HQ) training folders of a CORN-style root: ``trainA/`` (LQ) and ``trainB/`` (HQ)."""
    lq, hq = os.path.join(root, "trainA"), os.path.join(root, "trainB")
    for folder in (lq, hq):
        if not os.path.isdir(folder):
            raise InputError(f"'{root}' is not a CORN-style data root: missing folder '{folder}'")
    return lq, hq


def train(
    config: SSPNetConfig,
    lq: PathList,
    hq: PathList,
    run_dir: str,
    verbose: Union[int, str] = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    initial_generator: Optional[str] = None,
) -> TrainResult:
    """Trains (or resumes training of) SSP-Net on unpaired LQ and HQ images.

    Args:
        config: the run's configuration (``train.epochs`` is the total number of epochs).
        lq, hq: folders (searched recursively) and/or image files.
        run_dir: where checkpoints, logs and the final generator go; an existing run there resumes.
        verbose: Keras' progress output (``"auto"``, 0, 1 or 2).
        callbacks: extra Keras callbacks.
        initial_generator: start G from this generator (run folder, ``.keras`` file or pretrained
            name) instead of a random initialisation, to fine-tune it; ignored when the run resumes.
    """
    from ssp_keras.data.io import scan_images
    from ssp_keras.training.distribute import (
        agree_across_workers, describe_worker, is_chief, resolve_strategy, worker_shard, writable_directory,
    )

    config.validate()
    # Bad input is reported before any model is built.
    lq_files, lq_skipped = scan_images(lq, config.data.channels)
    hq_files, hq_skipped = scan_images(hq, config.data.channels)

    strategy = resolve_strategy(config.train)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.train.batch_size * replicas
    steps_per_epoch = config.train.steps_per_epoch or max(1, math.ceil(max(len(lq_files), len(hq_files)) / global_batch))
    chief = is_chief(strategy)
    out_dir = writable_directory(run_dir, strategy)
    os.makedirs(out_dir, exist_ok=True)
    worker_line = describe_worker(strategy, len(lq_files), len(hq_files), out_dir)
    if worker_line:
        print(worker_line, flush=True)
    _write_config(config, out_dir, replicas=replicas, global_batch=global_batch, steps_per_epoch=steps_per_epoch,
                  strategy=type(strategy).__name__)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.train.precision)
    try:
        keras.utils.set_random_seed(config.train.seed)
        with strategy.scope():
            # Every worker resumes from the chief's checkpoints (run_dir on a shared filesystem).
            model, initial_epoch = _build_model(config, steps_per_epoch, replicas, os.path.join(run_dir, "checkpoints"))
            if initial_generator and not initial_epoch:
                _load_generator_weights(model.generator, initial_generator)
        agree_across_workers(strategy, initial_epoch, "the epoch to resume from")
        if initial_epoch:
            log.warning("resuming %s after epoch %d", run_dir, initial_epoch)
            print(f"Resuming from the checkpoint of epoch {initial_epoch} in {run_dir}", flush=True)

        history = {}
        if initial_epoch < config.train.epochs:
            from ssp_keras.data.pipeline import make_unpaired_dataset

            dataset = make_unpaired_dataset(
                lq_files, hq_files, config.data, batch_size=global_batch,
                # A resumed run draws new crops rather than replaying the first epochs' ones.
                seed=config.train.seed + initial_epoch, shard=worker_shard(strategy),
            )
            fit = model.fit(
                dataset,
                epochs=config.train.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps_per_epoch,
                callbacks=_callbacks(config, out_dir, lq_files, hq_files) + list(callbacks),
                verbose=verbose,
                shuffle=False,  # the streams shuffle themselves
            )
            history = fit.history
        # Every worker saves (saving may involve collectives); only the chief's copy is kept.
        path = os.path.join(out_dir, "generator.keras")
        atomic_save(path, lambda temporary: model.generator.save(temporary))
        generator_path = path if chief else None
    finally:
        keras.config.set_dtype_policy(previous_policy)
        if not chief:
            shutil.rmtree(out_dir, ignore_errors=True)
    return TrainResult(
        run_dir=run_dir,
        generator_path=generator_path,
        initial_epoch=initial_epoch,
        epochs=config.train.epochs,
        history=history,
        replicas=replicas,
        global_batch_size=global_batch,
        steps_per_epoch=steps_per_epoch,
        skipped_files=lq_skipped + hq_skipped,
    )


def _build_model(config, steps_per_epoch, replicas, checkpoint_dir):
    """Model, optimisers and metrics, built in the caller's strategy scope; restores state."""
    from ssp_keras.training.callbacks import restore_training_state
    from ssp_keras.training.model import build_optimizers, build_sspnet

    sync = config.generator.sync_batch_norm
    if sync is None:
        sync = replicas > 1
    model = build_sspnet(config, sync_batch_norm=sync)
    generator_optimizer, discriminator_optimizer = build_optimizers(config, steps_per_epoch)
    model.compile(
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        jit_compile=config.train.jit_compile,
    )
    if model.fake_pool is not None:
        # The pool's variables are created on first use; create them now so they can be restored.
        size = config.data.image_size
        model.fake_pool.build((None, size, size, config.data.channels))
    initial_epoch = restore_training_state(model, checkpoint_dir)
    return model, initial_epoch


def _load_generator_weights(generator, source: str) -> None:
    """Copies the weights of a saved generator of the same architecture into ``generator``."""
    from ssp_keras.inference.loading import load_generator

    saved = load_generator(source)
    architecture = lambda config: {k: v for k, v in config.items() if k not in ("name", "trainable", "sync_batch_norm")}  # noqa: E731
    if architecture(saved.get_config()) != architecture(generator.get_config()):
        raise InputError(f"cannot start from '{source}': its generator architecture differs from this configuration's")
    generator.set_weights(saved.get_weights())
    print(f"Generator initialised from {source}", flush=True)


def _callbacks(config, out_dir, lq_files, hq_files):
    from ssp_keras.training.callbacks import (
        ImageGridLogger,
        LearningRateLogger,
        NonFiniteLossGuard,
        TrainingStateCheckpoint,
    )

    count = config.train.image_grid_size
    size, channels = config.data.image_size, config.data.channels
    logs = os.path.join(out_dir, "logs")
    return [
        NonFiniteLossGuard(),
        LearningRateLogger(),
        ImageGridLogger(
            preview_batch(lq_files[:count], size, channels),
            preview_batch(hq_files[:count], size, channels),
            log_dir=logs,
            png_directory=os.path.join(out_dir, "previews"),
        ),
        keras.callbacks.TensorBoard(log_dir=logs, write_graph=False, update_freq="epoch"),
        keras.callbacks.CSVLogger(os.path.join(out_dir, "history.csv"), append=True),
        # Last, so an epoch counts as done only when everything above has run.
        TrainingStateCheckpoint(os.path.join(out_dir, "checkpoints")),
    ]


def preview_batch(files: Sequence[str], size: int, channels: int) -> np.ndarray:
    """Centre crops ``[N, size, size, C]`` of the given images (resized up when smaller)."""
    from ssp_keras.data.io import read_image

    crops = []
    for path in files:
        image = read_image(path, channels)
        height, width = image.shape[:2]
        if min(height, width) < size:
            scale = size / min(height, width)
            image = tf.image.resize(image, (max(size, round(height * scale)), max(size, round(width * scale)))).numpy()
            height, width = image.shape[:2]
        top, left = (height - size) // 2, (width - size) // 2
        crops.append(image[top : top + size, left : left + size])
    return np.clip(np.stack(crops), 0.0, 1.0).astype(np.float32)


def _write_config(config: SSPNetConfig, out_dir: str, **resolved) -> None:
    values = config.to_dict()
    values["resolved"] = resolved
    atomic_write_bytes(os.path.join(out_dir, "config.json"), (json.dumps(values, indent=2) + "\n").encode())
