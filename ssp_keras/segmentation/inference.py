"""Using a fibre segmenter: loading it, and segmenting images of any size.

A segmenter is a :class:`~ssp_keras.segmentation.csnet.CSNet`, or any Keras model mapping
``[N, H, W, C]`` images in [0, 1] (C = 1 or 3) to one probability channel. It is saved as
``SEG_DIR/segmenter.keras`` (``ssp-net segmenter train --out SEG_DIR``).
"""

from __future__ import annotations

import weakref
from typing import Callable, Optional

import numpy as np

from ssp_keras.defaults import CHANNEL_COUNTS, CSNET
from ssp_keras.errors import InputError

#: The file a segmenter folder (``ssp-net segmenter train --out SEG_DIR``) holds.
SEGMENTER_FILE = "segmenter.keras"

# The spatial attention holds an (h*w)^2 affinity at 1/2**depth resolution, so images above this
# many pixels are segmented in overlapping tiles (blended) to bound memory.
SEGMENT_TILE_PIXELS = 1024 * 1024
SEGMENT_TILE_SIZE = 512
SEGMENT_TILE_OVERLAP = 32


# ============================================================================ loading
def resolve_segmenter_path(source: str) -> str:
    """The ``.keras`` file ``source`` designates: a segmenter folder or a ``.keras`` file."""
    from ssp_keras.utils.files import keras_file_in

    path = keras_file_in(source, SEGMENTER_FILE, "train one with `ssp-net segmenter train`")
    if path is not None:
        return path
    raise InputError(f"segmenter not found: '{source}' is neither a folder with {SEGMENTER_FILE} nor a .keras file")


def load_segmenter(source: str):
    """Loads a segmenter from a folder holding ``segmenter.keras`` or from a ``.keras`` file.

    Raises `InputError` naming the file when it is missing, unreadable, or not a model mapping
    ``[N, H, W, C]`` images (C = 1 or 3) to one probability channel.
    """
    import ssp_keras.segmentation.csnet  # noqa: F401  (registers CSNet for deserialisation)
    from ssp_keras.inference.loading import load_keras_file

    path = resolve_segmenter_path(source)
    model = load_keras_file(path, "segmenter")
    if len(getattr(model, "inputs", None) or ()) != 1:
        raise InputError(f"'{path}' is not a segmenter: expected a Keras model with one image input")
    input_shape, output_shape = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if len(input_shape) != 4 or input_shape[-1] not in CHANNEL_COUNTS or len(output_shape) != 4 or output_shape[-1] != 1:
        raise InputError(
            f"'{path}' is not a segmenter: expected [N, H, W, 1|3] -> [N, H, W, 1], got {input_shape} -> {output_shape}"
        )
    return model


# ============================================================================ inference
def size_multiple(model) -> int:
    """The multiple a segmenter needs its input padded to (``2**depth``; 16 for other models)."""
    multiple = getattr(model, "size_multiple", None)
    return int(multiple) if multiple else 2 ** CSNET["depth"]


# One traced inference function per model (a weak key: it goes when the model goes).
_SEGMENT_FUNCTIONS = weakref.WeakKeyDictionary()


def _segment_function(model) -> Callable:
    """A cached graph function: padded inference, ``[N, H, W, C]`` -> ``[N, H, W, 1]``."""
    function = _SEGMENT_FUNCTIONS.get(model)
    if function is None:
        import tensorflow as tf

        from ssp_keras.inference.tiling import crop_to_size, pad_to_multiple

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
    from ssp_keras.data.reading import convert_channels
    from ssp_keras.inference.compiled import model_channels
    from ssp_keras.inference.tiling import blend_tiles

    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[-1] not in CHANNEL_COUNTS or min(array.shape[:2]) < 1:
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


__all__ = ["SEGMENTER_FILE", "load_segmenter", "resolve_segmenter_path", "segment", "size_multiple"]
