"""Whole-image normalisation statistics, so tiles are normalised like the image they come from.

Instance normalisation (the default) makes the output depend on the statistics of what the network
sees, so every tile of a tiled enhancement is normalised with the statistics of the *whole* image
(`image_statistics`): one pass over the whole image records each normalisation layer's mean and
variance, and the tiles reuse them. That pass runs at full resolution up to `STATISTICS_PIXELS`
and on a downscaled copy beyond (`statistics_batch`, memory stays bounded), so tiles never differ
in tone; the remaining tiled-vs-whole difference is measured in ``tests/test_inference.py``.
The serving client sends the same `statistics_batch` to a server's ``image_statistics`` signature.
"""

from __future__ import annotations

import weakref
from typing import Callable, Optional, Tuple

import numpy as np

from ssp_keras.inference.compiled import compile_for_backend, enhance_tensor
from ssp_keras.inference.tiling import AUTO_TILE_PIXELS, PAD_MULTIPLE

#: Largest image (pixels) whose normalisation statistics, when tiling, come from a full-resolution
#: pass; larger images are downscaled to this size for that pass.
STATISTICS_PIXELS = AUTO_TILE_PIXELS


_COMPILED_WITH_STATISTICS = weakref.WeakKeyDictionary()


def compiled_with_statistics(model) -> Tuple[Callable, Callable]:
    """``(record, enhance_with)``: compiled functions that record a pass's normalisation statistics,
    and that enhance with given statistics instead of their own (see `image_statistics`)."""
    from ssp_keras.networks.layers import fixed_statistics, recorded_statistics

    functions = _COMPILED_WITH_STATISTICS.get(model)
    if functions is None:

        def record(images):
            with recorded_statistics() as statistics:
                enhance_tensor(model, images)
            return statistics

        def enhance_with(images, statistics):
            with fixed_statistics(statistics):
                return enhance_tensor(model, images)

        functions = (compile_for_backend(model, record), compile_for_backend(model, enhance_with))
        _COMPILED_WITH_STATISTICS[model] = functions
    return functions


def uses_instance_statistics(model) -> bool:
    """Whether ``model`` normalises with per-image statistics (`InstanceNormalization` anywhere)."""
    from ssp_keras.networks.layers import InstanceNormalization

    def layers(parent):  # nested models too (the generator's encoder is one)
        for layer in getattr(parent, "layers", ()):
            yield layer
            yield from layers(layer)

    return any(isinstance(layer, InstanceNormalization) for layer in layers(model))


def image_statistics(model, image: np.ndarray, max_pixels: Optional[int] = None) -> dict:
    """Every normalisation layer's mean and variance over the whole image ``[H, W, C]``.

    Up to ``max_pixels`` pixels (default `STATISTICS_PIXELS`) the image is used as it is; a larger
    one is first downscaled (area averaging) to about ``max_pixels``, so memory stays that of one
    image of that size.
    Returns ``{layer name: (mean, variance)}``, each ``[1, 1, 1, C_layer]``, for `enhance_array`.
    """
    record, _ = compiled_with_statistics(model)
    return record(statistics_batch(image, max_pixels))


def statistics_batch(image: np.ndarray, max_pixels: Optional[int] = None):
    """The batch ``[1, h, w, C]`` (float32 array) whose normalisation statistics stand for the whole
    image ``[H, W, C]``: the image itself up to ``max_pixels`` (default `STATISTICS_PIXELS`), else
    an area-averaged copy of about that many pixels. Local tiling and the serving client (which
    sends it to a server's ``image_statistics`` signature) use the same one."""
    max_pixels = STATISTICS_PIXELS if max_pixels is None else max_pixels
    height, width = image.shape[:2]
    image = np.asarray(image, np.float32)
    if height * width > max_pixels:
        import cv2

        scale = (max_pixels / float(height * width)) ** 0.5
        size = (max(PAD_MULTIPLE, round(height * scale)), max(PAD_MULTIPLE, round(width * scale)))
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA).reshape(*size, image.shape[2])
    return image[None]
