"""Enhancing arrays, files and folders at any size (padding, tiling) with a trained generator.

`load_generator` accepts a run folder, a ``.keras`` file or a pretrained name; `enhance_array`
takes float32 ``[H, W, C]`` / ``[N, H, W, C]`` images in [0, 1]; `enhance_files` enhances files and
folders into an output folder, keeping names and bit depth.
"""

from ssp_keras.inference.enhance import (
    AUTO_TILE_PIXELS,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    PAD_MULTIPLE,
    FilesResult,
    blend_tiles,
    crop_to_size,
    enhance_array,
    enhance_files,
    enhance_tensor,
    model_channels,
    pad_to_multiple,
)
from ssp_keras.inference.loading import load_generator, resolve_generator_path

__all__ = [
    "AUTO_TILE_PIXELS",
    "DEFAULT_TILE_OVERLAP",
    "DEFAULT_TILE_SIZE",
    "PAD_MULTIPLE",
    "FilesResult",
    "blend_tiles",
    "crop_to_size",
    "enhance_array",
    "enhance_files",
    "enhance_tensor",
    "load_generator",
    "model_channels",
    "pad_to_multiple",
    "resolve_generator_path",
]
