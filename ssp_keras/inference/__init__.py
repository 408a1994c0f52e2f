"""Enhancing arrays, files and folders at any size (padding, tiling) with a trained generator.

`load_generator` accepts a run folder, a ``.keras`` file or a pretrained name; `enhance_array`
takes float32 ``[H, W, C]`` / ``[N, H, W, C]`` images in [0, 1]; `enhance_files` enhances files and
folders into an output folder, keeping names and bit depth.
"""

from ssp_keras.inference.enhance import *  # noqa: F401,F403  (its __all__: padding, tiling, arrays, files)
from ssp_keras.inference.enhance import __all__ as _ENHANCE_NAMES
from ssp_keras.inference.loading import load_generator, resolve_generator_path

__all__ = [*_ENHANCE_NAMES, "load_generator", "resolve_generator_path"]
