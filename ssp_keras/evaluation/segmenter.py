"""The fibre segmenter of the paper's downstream check: CS-Net, training and inference.

The paper measures how much enhancement helps a downstream task by segmenting nerve fibres in
the enhanced images with CS-Net (L. Mou et al., "CS-Net: Channel and Spatial Attention Network
for Curvilinear Structure Segmentation", MICCAI 2019) trained on high-quality images with fibre
labels, and scoring the maps against manual labels (Table 2, :mod:`ssp_keras.evaluation.report`).

Network (:class:`CSNet`), as the authors' 2-D release:

* encoder: ``depth + 1`` residual blocks (3x3 conv-BN-ReLU twice, plus a 1x1 convolution of the
  input, summed, ReLU), widths ``base_width * 2**level``, 2x2 max-pooling between them;
* bottleneck: a spatial attention block (query 1x3 and key 3x1 convolutions to ``width /
  reduction`` channels, softmax affinity over all ``h*w`` positions, 1x1 value convolution) and a
  channel attention block (softmax over ``max(affinity) - affinity`` of the channel Gram matrix),
  each ``gamma * attended + x`` with ``gamma`` learnt from 0; their outputs are summed and added to
  the bottleneck feature (``x + SAB(x) + CAB(x)``, exactly the release's fusion);
* decoder: 2x2 stride-2 transposed convolutions, concatenation with the encoder feature of the
  same resolution, two 3x3 conv-BN-ReLU; a 1x1 convolution and a sigmoid give the fibre
  probability.

Input: float32 ``[N, H, W, channels]`` in [0, 1], H and W multiples of ``2**depth``
(:func:`segment` pads any size). Output: float32 ``[N, H, W, 1]`` probabilities in [0, 1].

Training (:func:`train_segmenter`): MSE + soft Dice loss (CS-Net's), Adam, random crops with
random flips and 90-degree rotations, from an image folder and a label folder matched by file
name (stem), or, by default, from synthetic HQ fibre images and their exact masks
(:mod:`ssp_keras.data.synthetic`) generated on the fly.

The defaults below live here rather than in ``config.py``: the segmenter is an evaluation tool,
not part of the SSP-Net configuration (the same reasoning as ``data.synthetic``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import weakref
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from ssp_keras.errors import InputError
from ssp_keras.networks.layers import conv_norm_act

logger = logging.getLogger(__name__)

#: The file a segmenter folder (``ssp-net segmenter train --out SEG_DIR``) holds.
SEGMENTER_FILE = "segmenter.keras"
#: Training settings and history written beside it.
SEGMENTER_INFO_FILE = "segmenter.json"

# --- network defaults (CS-Net's: widths 32..512, four poolings, attention reduction 8)
DEFAULT_BASE_WIDTH = 32
DEFAULT_DEPTH = 4
DEFAULT_ATTENTION_REDUCTION = 8

# --- training defaults: a few minutes on two CPU cores on the synthetic set. CS-Net trained for
# much longer with lr 1e-4; 1e-3 converges within the few hundred steps used here.
DEFAULT_EPOCHS = 4
DEFAULT_STEPS_PER_EPOCH = 50
DEFAULT_CROP_SIZE = 128
DEFAULT_BATCH_SIZE = 4
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_SEED = 0
#: Synthetic training set used when no folders are given: HQ images and exact fibre masks.
DEFAULT_SYNTHETIC_COUNT = 16
DEFAULT_SYNTHETIC_SIZE = 256

# --- inference: the spatial attention holds an (h*w)^2 affinity at 1/2**depth resolution, so
# images above this many pixels are segmented in overlapping tiles (blended) to bound memory.
SEGMENT_TILE_PIXELS = 1024 * 1024
SEGMENT_TILE_SIZE = 512
SEGMENT_TILE_OVERLAP = 32


# ============================================================================ network
@keras.saving.register_keras_serializable(package="ssp_keras")
class SpatialAffinity(keras.layers.Layer):
    """The affinity step of CS-Net's spatial attention block.

    Inputs ``[query, key, value, features]``: query and key ``[N, h, w, c']``, value and features
    ``[N, h, w, C]``. Output ``gamma * A(value) + features``, ``[N, h, w, C]``, where
    ``A[i, j] = softmax_j(query_i . key_j)`` mixes the values of all positions ``j`` into position
    ``i``. ``gamma`` starts at 0, so the block starts as the identity.
    """

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(1,), initializer="zeros", name="gamma")

    def call(self, inputs):
        query, key, value, features = inputs
        shape = keras.ops.shape(features)
        height, width, channels = shape[1], shape[2], features.shape[-1]
        query = keras.ops.reshape(query, (-1, height * width, query.shape[-1]))
        key = keras.ops.reshape(key, (-1, height * width, key.shape[-1]))
        value = keras.ops.reshape(value, (-1, height * width, channels))
        affinity = keras.ops.softmax(keras.ops.matmul(query, keras.ops.transpose(key, (0, 2, 1))), axis=-1)
        attended = keras.ops.reshape(keras.ops.matmul(affinity, value), (-1, height, width, channels))
        return self.gamma * attended + features

    def compute_output_shape(self, input_shape):
        return input_shape[3]


@keras.saving.register_keras_serializable(package="ssp_keras")
class ChannelAffinity(keras.layers.Layer):
    """CS-Net's channel attention block: ``gamma * (x mixed across channels) + x``.

    Input and output ``[N, h, w, C]``. The channel Gram matrix ``G = X^T X`` (``X``: ``[h*w, C]``)
    becomes ``softmax(max_row(G) - G)`` (so weakly correlated channels get the larger weights, as
    in the release and DANet), which re-mixes the channels. ``gamma`` starts at 0.
    """

    def build(self, input_shape):
        self.gamma = self.add_weight(shape=(1,), initializer="zeros", name="gamma")

    def call(self, features):
        shape = keras.ops.shape(features)
        height, width, channels = shape[1], shape[2], features.shape[-1]
        flat = keras.ops.reshape(features, (-1, height * width, channels))
        gram = keras.ops.matmul(keras.ops.transpose(flat, (0, 2, 1)), flat)  # [N, C, C]
        affinity = keras.ops.softmax(keras.ops.max(gram, axis=-1, keepdims=True) - gram, axis=-1)
        mixed = keras.ops.matmul(flat, keras.ops.transpose(affinity, (0, 2, 1)))  # [N, h*w, C]
        return self.gamma * keras.ops.reshape(mixed, (-1, height, width, channels)) + features

    def compute_output_shape(self, input_shape):
        return input_shape


def _residual_encoder_block(x, width: int, name: str):
    """CS-Net's ResEncoder: relu(BN-ReLU(conv3x3(BN-ReLU(conv3x3(x)))) + conv1x1(x))."""
    shortcut = keras.layers.Conv2D(width, 1, padding="same", name=f"{name}_shortcut")(x)
    y = conv_norm_act(x, width, 3, 1, "batch", False, f"{name}_a")
    y = conv_norm_act(y, width, 3, 1, "batch", False, f"{name}_b")
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def _affinity_attention(x, reduction: int, name: str):
    """Spatial and channel attention of the bottleneck feature ``x``; returns x + SAB(x) + CAB(x)."""
    width = x.shape[-1]
    inner = max(1, width // reduction)
    # Query and key look along rows (1x3) and columns (3x1): elongated fibres, elongated kernels.
    query = conv_norm_act(x, inner, (1, 3), 1, "batch", False, f"{name}_query")
    key = conv_norm_act(x, inner, (3, 1), 1, "batch", False, f"{name}_key")
    value = keras.layers.Conv2D(width, 1, name=f"{name}_value")(x)
    spatial = SpatialAffinity(name=f"{name}_spatial")([query, key, value, x])
    channel = ChannelAffinity(name=f"{name}_channel")(x)
    return keras.layers.Add(name=f"{name}_fuse")([x, spatial, channel])


@keras.saving.register_keras_serializable(package="ssp_keras")
class CSNet(keras.Model):
    """CS-Net fibre segmenter (see the module docstring); every hyperparameter is an argument.

    Args:
        channels: image channels, 1 (gray) or 3 (RGB).
        base_width: width of the first encoder block; level ``l`` has ``base_width * 2**l``.
        depth: number of 2x2 poolings (CS-Net: 4); inputs must be multiples of ``2**depth``.
        attention_reduction: query/key width of the spatial attention is ``width // reduction``.

    Call: float32 ``[N, H, W, channels]`` in [0, 1] -> ``[N, H, W, 1]`` fibre probabilities.
    """

    def __init__(
        self,
        channels: int = 1,
        base_width: int = DEFAULT_BASE_WIDTH,
        depth: int = DEFAULT_DEPTH,
        attention_reduction: int = DEFAULT_ATTENTION_REDUCTION,
        **kwargs,
    ):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        for label, value in (("base_width", base_width), ("depth", depth), ("attention_reduction", attention_reduction)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        channels, base_width, depth = int(channels), int(base_width), int(depth)
        attention_reduction = int(attention_reduction)

        # === Functional graph ===
        inputs = keras.Input((None, None, channels), name="images")
        skips = []
        x = inputs
        for level in range(depth):
            x = _residual_encoder_block(x, base_width * 2**level, f"encoder{level}")
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool{level}")(x)
        x = _residual_encoder_block(x, base_width * 2**depth, f"encoder{depth}")
        x = _affinity_attention(x, attention_reduction, "attention")
        for level in reversed(range(depth)):
            width = base_width * 2**level
            x = keras.layers.Conv2DTranspose(width, 2, strides=2, name=f"up{level}")(x)
            x = keras.layers.Concatenate(name=f"concat{level}")([skips[level], x])
            x = conv_norm_act(x, width, 3, 1, "batch", False, f"decoder{level}_a")
            x = conv_norm_act(x, width, 3, 1, "batch", False, f"decoder{level}_b")
        outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="probability")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.channels = channels
        self.base_width = base_width
        self.depth = depth
        self.attention_reduction = attention_reduction

    @property
    def size_multiple(self) -> int:
        """Heights and widths the network accepts are multiples of this (``2**depth``)."""
        return 2**self.depth

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "channels": self.channels,
            "base_width": self.base_width,
            "depth": self.depth,
            "attention_reduction": self.attention_reduction,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


# ============================================================================ loss
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


# ============================================================================ inference
def size_multiple(model) -> int:
    """The multiple a segmenter needs its input padded to (``2**depth``; 16 for other models)."""
    multiple = getattr(model, "size_multiple", None)
    return int(multiple) if multiple else 2**DEFAULT_DEPTH


# One traced inference function per model (a weak key: it goes when the model goes).
_SEGMENT_FUNCTIONS = weakref.WeakKeyDictionary()


def _segment_function(model) -> Callable:
    """A cached graph function: padded inference, ``[N, H, W, C]`` -> ``[N, H, W, 1]``."""
    function = _SEGMENT_FUNCTIONS.get(model)
    if function is None:
        import tensorflow as tf

        from ssp_keras.inference.enhance import crop_to_size, pad_to_multiple

        multiple = size_multiple(model)

        def run(images):
            padded, size = pad_to_multiple(tf.cast(images, tf.float32), multiple)
            probabilities = tf.cast(model(padded, training=False), tf.float32)
            return tf.clip_by_value(crop_to_size(probabilities, size), 0.0, 1.0)

        # reduce_retracing: one generic trace for all image sizes after the second one.
        function = tf.function(run, reduce_retracing=True)
        _SEGMENT_FUNCTIONS[model] = function
    return function


def segment(model, image, tile_size: Optional[int] = None) -> np.ndarray:
    """Fibre probability map of one image of any size.

    Args:
        model: a segmenter (:class:`CSNet` or any ``[N, H, W, C] -> [N, H, W, 1]`` Keras model).
        image: float in [0, 1] (``uint8`` is divided by 255), ``[H, W]`` or ``[H, W, C]``; colour
            and gray are converted to the model's channels (BT.601 luma / replicated gray).
        tile_size: None tiles automatically above :data:`SEGMENT_TILE_PIXELS` (the attention's
            memory grows with the square of the pixel count); an integer forces tiles of that
            size, 0 disables tiling.

    Returns:
        float32 ``[H, W]`` probabilities in [0, 1]. The image is reflect-padded at the bottom and
        right to the network's multiple and the result cropped back.
    """
    from ssp_keras.data.io import convert_channels
    from ssp_keras.inference.enhance import blend_tiles, model_channels

    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3) or min(array.shape[:2]) < 1:
        raise InputError(f"segment: expected an image [H, W] or [H, W, 1|3], got shape {np.shape(image)}")
    if not np.all(np.isfinite(array)):
        raise InputError("segment: the image contains NaN or Inf values")
    array = convert_channels(np.clip(array, 0.0, 1.0), model_channels(model))
    function = _segment_function(model)
    height, width = array.shape[:2]
    if tile_size is None:
        tile_size = SEGMENT_TILE_SIZE if height * width > SEGMENT_TILE_PIXELS else 0

    def segment_tile(tile: np.ndarray) -> np.ndarray:
        return function(tile[None]).numpy()[0]

    if tile_size and (height > tile_size or width > tile_size):
        # blend_tiles keeps the input's channel count; every channel gets the same probability.
        # Small forced tiles get a proportionally smaller overlap (it must stay below the tile size).
        probabilities = blend_tiles(array, segment_tile, tile_size, min(SEGMENT_TILE_OVERLAP, tile_size // 4))
    else:
        probabilities = segment_tile(array)
    return np.ascontiguousarray(probabilities[..., 0], dtype=np.float32)


# ============================================================================ loading
def resolve_segmenter_path(source: str) -> str:
    """The ``.keras`` file ``source`` designates: a segmenter folder or a ``.keras`` file."""
    from ssp_keras.utils.files import keras_file_in

    path = keras_file_in(source, SEGMENTER_FILE, "train one with `ssp-net segmenter train`")
    if path is not None:
        return path
    raise InputError(f"segmenter not found: '{source}' is neither a folder with {SEGMENTER_FILE} nor a .keras file")


def load_segmenter(source: str) -> keras.Model:
    """Loads a segmenter from a folder holding ``segmenter.keras`` or from a ``.keras`` file.

    Raises `InputError` naming the file when it is missing, unreadable, or not a model mapping
    ``[N, H, W, C]`` images (C = 1 or 3) to one probability channel.
    """
    path = resolve_segmenter_path(source)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # zip, JSON and h5 errors all mean "not a usable model file"
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"cannot load the segmenter '{path}': {reason}") from error
    if not isinstance(model, keras.Model) or len(getattr(model, "inputs", None) or ()) != 1:
        raise InputError(f"'{path}' is not a segmenter: expected a Keras model with one image input")
    input_shape, output_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(input_shape) != 4 or input_shape[-1] not in (1, 3) or len(output_shape) != 4 or output_shape[-1] != 1:
        raise InputError(
            f"'{path}' is not a segmenter: expected [N, H, W, 1|3] -> [N, H, W, 1], got {input_shape} -> {output_shape}"
        )
    return model


# ============================================================================ training data
def stem(path: str) -> str:
    """A file's name without folder and extension: the key images and labels are matched by."""
    return os.path.splitext(os.path.basename(path))[0]


def index_by_stem(files: Sequence[str], folder: str) -> Dict[str, str]:
    """``{stem: path}`` for ``files``; `InputError` when two files of ``folder`` share a stem."""
    index: Dict[str, str] = {}
    for path in files:
        key = stem(path)
        if key in index:
            raise InputError(f"two files in '{folder}' share the name '{key}': '{index[key]}' and '{path}'")
        index[key] = path
    return index


def match_by_stem(images: Sequence[str], images_folder: str, others_folder: str, what: str) -> Dict[str, str]:
    """Pairs every image with the file of the same stem in ``others_folder`` (labels or masks).

    Returns ``{image path: other path}``. Raises `InputError` naming the first file of
    ``others_folder`` without an image, or the first image without a file (``what`` says which
    kind of file, e.g. "label").
    """
    from ssp_keras.data.io import list_images

    image_index = index_by_stem(images, images_folder)
    other_index = index_by_stem(list_images(others_folder), others_folder)
    for key, path in other_index.items():
        if key not in image_index:
            raise InputError(f"{what} '{path}' has no image of the same name in '{images_folder}'")
    for key, path in image_index.items():
        if key not in other_index:
            raise InputError(f"image '{path}' has no {what} of the same name in '{others_folder}'")
    return {image_index[key]: other_index[key] for key in image_index}


def read_binary_mask(path: str, shape: Tuple[int, int]) -> np.ndarray:
    """A label or field-of-view file as bool ``[H, W]`` (any nonzero pixel is True).

    ``shape``: the ``(H, W)`` of the image it belongs to; a different size is an `InputError`
    naming the file.
    """
    from ssp_keras.data.io import read_image

    mask = read_image(path, channels=1)[..., 0] > 0
    if mask.shape != tuple(shape):
        raise InputError(f"'{path}' is {mask.shape[0]}x{mask.shape[1]} but its image is {shape[0]}x{shape[1]}")
    return mask


def load_labelled_folders(images: str, labels: str, channels: int) -> Tuple[List[np.ndarray], List[np.ndarray], List[str]]:
    """Reads every image of ``images`` and its label of the same stem in ``labels``.

    Returns ``(images float32 [H, W, channels] in [0, 1], labels bool [H, W], image paths)``.
    Raises `InputError` for a missing folder, a label without image (or the reverse), an
    unreadable file or a size mismatch, naming the culprit.
    """
    from ssp_keras.data.io import list_images, read_image

    for folder in (images, labels):
        if not os.path.isdir(folder):
            raise InputError(f"folder not found: '{folder}'")
    pairs = match_by_stem(list_images(images), images, labels, "label")
    loaded_images, loaded_labels = [], []
    for image_path, label_path in pairs.items():
        image = read_image(image_path, channels)
        loaded_images.append(image)
        loaded_labels.append(read_binary_mask(label_path, image.shape[:2]))
    return loaded_images, loaded_labels, list(pairs)


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
    epochs: int = DEFAULT_EPOCHS,
    steps_per_epoch: int = DEFAULT_STEPS_PER_EPOCH,
    image_size: int = DEFAULT_CROP_SIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    channels: int = 1,
    base_width: int = DEFAULT_BASE_WIDTH,
    depth: int = DEFAULT_DEPTH,
    attention_reduction: int = DEFAULT_ATTENTION_REDUCTION,
    seed: int = DEFAULT_SEED,
    synthetic_count: int = DEFAULT_SYNTHETIC_COUNT,
    synthetic_size: int = DEFAULT_SYNTHETIC_SIZE,
    verbose: int = 0,
) -> SegmenterTrainResult:
    """Trains a :class:`CSNet` and saves it as ``out_dir/segmenter.keras`` (atomically).

    Args:
        images, labels: folders of training images and binary fibre masks matched by file name
            (stem; any nonzero label pixel is fibre). Both None: ``synthetic_count`` synthetic HQ
            images of ``synthetic_size`` pixels and their exact masks, generated from ``seed``.
        out_dir: created; receives ``segmenter.keras`` and ``segmenter.json`` (settings, data
            source, loss per epoch). Must not be or lie inside an input folder.
        epochs, steps_per_epoch: optimiser steps = epochs * steps_per_epoch.
        image_size: side of the random square crops, a multiple of ``2**depth``.
        batch_size: crops per step.
        learning_rate: Adam's.
        channels, base_width, depth, attention_reduction: the network (see :class:`CSNet`).
        seed: weights, crops and the synthetic set.
        verbose: Keras progress output (0 silent, 1 bar, 2 a line per epoch).

    Returns:
        A :class:`SegmenterTrainResult`.

    Raises:
        InputError: one folder without the other, a missing folder, a label without image or an
            image without label, an unreadable file, or an output folder inside an input folder.
    """
    import tensorflow as tf

    from ssp_keras.utils.files import atomic_save, atomic_write_bytes, check_output_location

    if (images is None) != (labels is None):
        raise InputError("give both an images folder and a labels folder, or neither (synthetic data)")
    counts = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "image_size": image_size}
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    multiple = 2**depth
    if image_size % multiple:
        raise ValueError(f"image_size must be a multiple of 2**depth = {multiple}, got {image_size}")

    started = time.perf_counter()
    if images is None:
        training_images, training_labels = synthetic_training_set(synthetic_count, synthetic_size, seed, channels)
        data = {"source": "synthetic", "count": synthetic_count, "size": synthetic_size, "seed": seed}
    else:
        try:
            check_output_location(out_dir, [images, labels])
        except ValueError as error:
            raise InputError(str(error)) from None
        training_images, training_labels, paths = load_labelled_folders(images, labels, channels)
        data = {
            "source": "folders",
            "images": os.path.abspath(images),
            "labels": os.path.abspath(labels),
            "count": len(paths),
        }
    foreground = float(np.mean([label.mean() for label in training_labels]))
    data["fibre_fraction"] = foreground
    if foreground == 0.0:
        logger.warning("the training labels hold no fibre pixel: the segmenter will learn to predict none")

    keras.utils.set_random_seed(seed)
    model = CSNet(
        channels=channels, base_width=base_width, depth=depth, attention_reduction=attention_reduction, name="csnet"
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=mse_dice_loss, jit_compile=False)
    sampler = CropSampler(training_images, training_labels, image_size, batch_size, seed)
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(sampler),
        output_signature=(
            tf.TensorSpec((batch_size, image_size, image_size, channels), tf.float32),
            tf.TensorSpec((batch_size, image_size, image_size, 1), tf.float32),
        ),
    )
    fit = model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=verbose, shuffle=False)
    history = {name: [float(value) for value in values] for name, values in fit.history.items()}

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, SEGMENTER_FILE)
    atomic_save(path, model.save)
    seconds = time.perf_counter() - started
    info = {
        "model": model.get_config(),
        "training": {
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "image_size": image_size,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "loss": "mse + (1 - soft dice)",
            "seed": seed,
        },
        "data": data,
        "history": history,
        "seconds": round(seconds, 3),
    }
    atomic_write_bytes(os.path.join(out_dir, SEGMENTER_INFO_FILE), (json.dumps(info, indent=2) + "\n").encode("utf-8"))
    return SegmenterTrainResult(model=model, path=path, history=history, data=data, seconds=seconds)


__all__ = [
    "CSNet",
    "ChannelAffinity",
    "CropSampler",
    "SEGMENTER_FILE",
    "SegmenterTrainResult",
    "SpatialAffinity",
    "load_labelled_folders",
    "load_segmenter",
    "match_by_stem",
    "mse_dice_loss",
    "read_binary_mask",
    "resolve_segmenter_path",
    "segment",
    "size_multiple",
    "synthetic_training_set",
    "train_segmenter",
]
