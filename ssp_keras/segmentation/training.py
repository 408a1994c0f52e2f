"""Training the fibre segmenter: CS-Net's recipe on labelled folders or synthetic fibre images.

:func:`train_segmenter` reads like its pipeline: the training set (an image folder and a label
folder matched by file name, or, by default, synthetic HQ fibre images and their exact masks from
:mod:`ssp_keras.data.synthetic`), a compiled :class:`~ssp_keras.segmentation.csnet.CSNet`, random
crops with random flips and 90-degree rotations (:class:`CropSampler`), MSE + soft Dice loss
(CS-Net's) with Adam, then ``segmenter.keras`` and ``segmenter.json`` written atomically.

Its settings are one :class:`SegmenterTrainingOptions`; the network's defaults are CS-Net's
(`ssp_keras.defaults.CSNET`). The training defaults live in the options rather than in
``config.py``: the segmenter is an evaluation tool, not part of the SSP-Net configuration (the
same reasoning as ``data.synthetic``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from ssp_keras.defaults import CSNET
from ssp_keras.errors import InputError
from ssp_keras.segmentation.csnet import CSNet
from ssp_keras.segmentation.loss import mse_dice_loss
from ssp_keras.segmentation.inference import SEGMENTER_FILE

logger = logging.getLogger(__name__)

#: Training settings and history written beside ``segmenter.keras``.
SEGMENTER_INFO_FILE = "segmenter.json"


# ============================================================================ settings
@dataclasses.dataclass(frozen=True)
class SegmenterTrainingOptions:
    """Everything :func:`train_segmenter` trains with besides its folders.

    The defaults take a few minutes on two CPU cores on the synthetic set. CS-Net trained for much
    longer with lr 1e-4; 1e-3 converges within the few hundred steps used here.

    Attributes:
        epochs, steps_per_epoch: optimiser steps = epochs * steps_per_epoch.
        image_size: side of the random square crops, a multiple of ``2**depth``.
        batch_size: crops per step.
        learning_rate: Adam's.
        channels, base_width, depth, attention_reduction: the network (see :class:`CSNet`).
        seed: weights, crops and the synthetic set.
        synthetic_count, synthetic_size: the synthetic training set used when no folders are given
            (HQ images of ``synthetic_size`` pixels and their exact masks).
    """

    epochs: int = 4
    steps_per_epoch: int = 50
    image_size: int = 128
    batch_size: int = 4
    learning_rate: float = 1e-3
    channels: int = CSNET["channels"]
    base_width: int = CSNET["base_width"]
    depth: int = CSNET["depth"]
    attention_reduction: int = CSNET["attention_reduction"]
    seed: int = 0
    synthetic_count: int = 16
    synthetic_size: int = 256

    def __post_init__(self):
        from ssp_keras import defaults

        for name in ("epochs", "steps_per_epoch", "batch_size", "image_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        defaults.check({"learning_rate": defaults.positive_number, "seed": defaults.seed},
                       {"learning_rate": self.learning_rate, "seed": self.seed}, lambda name: name)
        multiple = 2**self.depth
        if self.image_size % multiple:
            raise ValueError(f"image_size must be a multiple of 2**depth = {multiple}, got {self.image_size}")

    def network(self) -> dict:
        """The :class:`CSNet` arguments."""
        return dict(channels=self.channels, base_width=self.base_width, depth=self.depth,
                    attention_reduction=self.attention_reduction)

    def recipe(self) -> dict:
        """The optimisation settings, as ``segmenter.json`` records them."""
        return {
            "epochs": self.epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "image_size": self.image_size,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "loss": "mse + (1 - soft dice)",
            "seed": self.seed,
        }


# ============================================================================ training data
def synthetic_training_set(count: int, size: int, seed: int, channels: int) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """``count`` synthetic HQ fibre images ``[size, size, channels]`` and their masks ``[size, size]``."""
    from ssp_keras.data.synthetic import render_scene

    scenes = [render_scene(np.random.default_rng([seed, index]), size, channels) for index in range(count)]
    return [image for image, _ in scenes], [mask for _, mask in scenes]


class CropSampler:
    """Endless random training batches from in-memory images and labels.

    Each sample: a random image, a random ``crop_size`` square (images smaller than that are
    reflect-padded first), a random horizontal/vertical flip and a random 90-degree rotation
    (fibres run in every direction). Yields ``(images [B, S, S, C], labels [B, S, S, 1])`` float32.
    """

    def __init__(
        self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], crop_size: int, batch_size: int, seed: int
    ):
        self.images = [self._padded(np.asarray(image, np.float32), crop_size) for image in images]
        self.labels = [self._padded(np.asarray(label, np.float32)[..., None], crop_size) for label in labels]
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _padded(array: np.ndarray, crop_size: int) -> np.ndarray:
        missing_rows, missing_columns = max(0, crop_size - array.shape[0]), max(0, crop_size - array.shape[1])
        if missing_rows or missing_columns:
            array = np.pad(array, ((0, missing_rows), (0, missing_columns), (0, 0)), mode="reflect")
        return array

    def sample(self) -> Tuple[np.ndarray, np.ndarray]:
        image_batch, label_batch = [], []
        for _ in range(self.batch_size):
            index = int(self.rng.integers(len(self.images)))
            image, label = self.images[index], self.labels[index]
            top = int(self.rng.integers(image.shape[0] - self.crop_size + 1))
            left = int(self.rng.integers(image.shape[1] - self.crop_size + 1))
            window = (slice(top, top + self.crop_size), slice(left, left + self.crop_size))
            image, label = image[window], label[window]
            if self.rng.random() < 0.5:
                image, label = image[:, ::-1], label[:, ::-1]
            if self.rng.random() < 0.5:
                image, label = image[::-1], label[::-1]
            turns = int(self.rng.integers(4))
            image_batch.append(np.rot90(image, turns))
            label_batch.append(np.rot90(label, turns))
        return np.stack(image_batch), np.stack(label_batch)

    def __iter__(self):
        while True:
            yield self.sample()


def training_set(
    images: Optional[str], labels: Optional[str], out_dir: str, options: SegmenterTrainingOptions
) -> Tuple[List[np.ndarray], List[np.ndarray], Dict[str, object]]:
    """``(images, labels, description)``: the labelled folders, or the synthetic set when both are None.

    The description (source, count, folders or seed, fibre fraction) goes into ``segmenter.json``.
    """
    from ssp_keras.data.labels import load_labelled_folders
    from ssp_keras.utils.files import check_output_location

    if (images is None) != (labels is None):
        raise InputError("give both an images folder and a labels folder, or neither (synthetic data)")
    if images is None:
        count, size, seed = options.synthetic_count, options.synthetic_size, options.seed
        training_images, training_labels = synthetic_training_set(count, size, seed, options.channels)
        data = {"source": "synthetic", "count": count, "size": size, "seed": seed}
    else:
        try:
            check_output_location(out_dir, [images, labels])
        except ValueError as error:
            raise InputError(str(error)) from None
        training_images, training_labels, paths = load_labelled_folders(images, labels, options.channels)
        data = {"source": "folders", "images": os.path.abspath(images), "labels": os.path.abspath(labels),
                "count": len(paths)}
    data["fibre_fraction"] = float(np.mean([label.mean() for label in training_labels]))
    if data["fibre_fraction"] == 0.0:
        logger.warning("the training labels hold no fibre pixel: the segmenter will learn to predict none")
    return training_images, training_labels, data


def crop_dataset(sampler: CropSampler, channels: int):
    """The endless ``tf.data`` stream of ``sampler``'s batches."""
    import tensorflow as tf

    batch, size = sampler.batch_size, sampler.crop_size
    return tf.data.Dataset.from_generator(
        lambda: iter(sampler),
        output_signature=(
            tf.TensorSpec((batch, size, size, channels), tf.float32),
            tf.TensorSpec((batch, size, size, 1), tf.float32),
        ),
    )


# ============================================================================ training
@dataclasses.dataclass
class SegmenterTrainResult:
    """What :func:`train_segmenter` produced: the model, where it was saved, and how."""

    model: keras.Model
    path: str
    history: Dict[str, List[float]]
    data: Dict[str, object]
    seconds: float


def train_segmenter(
    images: Optional[str],
    labels: Optional[str],
    out_dir: str,
    options: Optional[SegmenterTrainingOptions] = None,
    verbose: int = 0,
    **overrides,
) -> SegmenterTrainResult:
    """Trains a :class:`CSNet` and saves it as ``out_dir/segmenter.keras`` (atomically).

    Args:
        images, labels: folders of training images and binary fibre masks matched by file name
            (stem; any nonzero label pixel is fibre). Both None: ``options.synthetic_count``
            synthetic HQ images and their exact masks, generated from ``options.seed``.
        out_dir: created; receives ``segmenter.keras`` and ``segmenter.json`` (settings, data
            source, loss per epoch). Must not be or lie inside an input folder.
        options: the settings (:class:`SegmenterTrainingOptions`; its defaults when None).
        verbose: Keras progress output (0 silent, 1 bar, 2 a line per epoch).
        overrides: fields of the options to change (``train_segmenter(None, None, out, epochs=1)``).

    Returns:
        A :class:`SegmenterTrainResult`.

    Raises:
        InputError: one folder without the other, a missing folder, a label without image or an
            image without label, an unreadable file, a label of another size than its image, an
            output folder inside an input folder, or one another process is writing into.
        ValueError: a count that is not a positive integer, or crops that are no multiple of
            ``2**depth``.
    """
    from ssp_keras.utils.locks import claim_folder

    options = dataclasses.replace(options or SegmenterTrainingOptions(), **overrides)
    started = time.perf_counter()
    training_images, training_labels, data = training_set(images, labels, out_dir, options)
    with claim_folder(out_dir, "ssp-net segmenter train"):  # writable, and no other process writes there
        return _train(training_images, training_labels, data, out_dir, options, verbose, started)


def _train(training_images, training_labels, data, out_dir: str, options: SegmenterTrainingOptions, verbose: int,
           started: float) -> "SegmenterTrainResult":
    """`train_segmenter` once the data are read and this process owns ``out_dir``."""
    keras.utils.set_random_seed(options.seed)
    model = CSNet(**options.network(), name="csnet")
    model.compile(optimizer=keras.optimizers.Adam(options.learning_rate), loss=mse_dice_loss, jit_compile=False)
    sampler = CropSampler(training_images, training_labels, options.image_size, options.batch_size, options.seed)
    fit = model.fit(crop_dataset(sampler, options.channels), epochs=options.epochs,
                    steps_per_epoch=options.steps_per_epoch, verbose=verbose, shuffle=False)
    history = {name: [float(value) for value in values] for name, values in fit.history.items()}

    path = save_segmenter(model, out_dir)
    seconds = time.perf_counter() - started
    info = {"model": model.get_config(), "training": options.recipe(), "data": data, "history": history,
            "seconds": round(seconds, 3)}
    _write_json(os.path.join(out_dir, SEGMENTER_INFO_FILE), info)
    return SegmenterTrainResult(model=model, path=path, history=history, data=data, seconds=seconds)


def save_segmenter(model: keras.Model, out_dir: str) -> str:
    """Saves ``model`` as ``out_dir/segmenter.keras`` (created, atomically); returns the path."""
    from ssp_keras.errors import NonFiniteTrainingError
    from ssp_keras.utils.files import atomic_save
    from ssp_keras.utils.variables import non_finite_variables

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, SEGMENTER_FILE)
    bad = non_finite_variables((variable.path, variable) for variable in model.weights)
    if bad:
        raise NonFiniteTrainingError(f"training stopped: {len(bad)} weight(s) of the segmenter became NaN or infinite "
                                     f"(first '{bad[0]}'); not saving {path}. Lower --learning-rate")
    atomic_save(path, model.save)
    return path


def _write_json(path: str, values: dict) -> None:
    from ssp_keras.utils.files import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(values, indent=2) + "\n").encode("utf-8"))


__all__ = [
    "CropSampler",
    "SEGMENTER_INFO_FILE",
    "SegmenterTrainResult",
    "SegmenterTrainingOptions",
    "crop_dataset",
    "save_segmenter",
    "synthetic_training_set",
    "train_segmenter",
    "training_set",
]
