"""Enhancing arrays, files and folders of any size with a trained generator (SPEC section 2).

`enhance_array` enhances one image or a batch: whole (padded to multiples of 32 and cropped back,
`ssp_keras.inference.tiling`), or, above `AUTO_TILE_PIXELS`, tile by tile with every tile
normalised like the whole image (`ssp_keras.inference.statistics`). `enhance_files` runs it over
files and folders (`ssp_keras.inference.files`, planned by `ssp_keras.inference.outputs`).

Shapes and ranges: images are float32 ``[H, W, C]`` or ``[N, H, W, C]`` in [0, 1] (CONTRIBUTING.md);
results have the same shape, in [0, 1]. Tiled and whole-image results are not identical: near a
tile's border the network sees less context (mirrored instead of real), which is why tiles overlap
and the ramp gives those border pixels little weight.

The names of those modules are also importable from here (this module held them all before), for
one release; import them from their own modules.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ssp_keras.data.samples import SIXTEEN_BIT_EXTENSIONS, output_bit_depth  # noqa: F401  (part of this API)
from ssp_keras.errors import InputError
from ssp_keras.inference.compiled import compiled_enhance, enhance_tensor, model_channels  # noqa: F401
from ssp_keras.inference.files import FilesResult, colour_note, process_image_files  # noqa: F401
from ssp_keras.inference.outputs import (  # noqa: F401
    DICOM_OUTPUT_FORMATS,
    FALLBACK_EXTENSION,
    FileJob,
    frame_file_names,
    output_name,
    plan_outputs,
)
from ssp_keras.inference.statistics import (  # noqa: F401
    STATISTICS_PIXELS,
    compiled_with_statistics,
    image_statistics,
    statistics_batch,
    uses_instance_statistics,
)
from ssp_keras.inference.tiling import (  # noqa: F401
    AUTO_TILE_PIXELS,
    DEFAULT_TILE_OVERLAP,
    DEFAULT_TILE_SIZE,
    PAD_MULTIPLE,
    blend_tiles,
    crop_to_size,
    pad_to_multiple,
    tile_starts,
)


def enhance_array(
    generator,
    image: np.ndarray,
    tile_size: Optional[int] = None,
    overlap: int = DEFAULT_TILE_OVERLAP,
) -> np.ndarray:
    """Enhances one image ``[H, W, C]`` (or ``[H, W]`` for C = 1) or a batch ``[N, H, W, C]``.

    image: float in [0, 1] (other floats are cast to float32), any H and W, C = the generator's
      channels.
    tile_size: None tiles automatically above `AUTO_TILE_PIXELS` with `DEFAULT_TILE_SIZE` tiles;
      an integer forces tiles of that size (0 disables tiling).
    overlap: pixels shared by neighbouring tiles (blended with a cosine ramp).
    Returns float32 of the input's shape, in [0, 1].
    """
    array = np.asarray(image, dtype=np.float32)
    gray_2d = array.ndim == 2
    if gray_2d:
        array = array[:, :, None]
    single = array.ndim == 3
    batch = array[None] if single else array
    channels = model_channels(generator)
    if batch.ndim != 4 or batch.shape[-1] != channels or min(batch.shape[1:3]) < 1:
        raise InputError(
            f"expected an image [H, W, {channels}] or a batch [N, H, W, {channels}] for this "
            f"{channels}-channel model, got shape {np.shape(image)}"
        )
    height, width = batch.shape[1:3]
    if tile_size is None:
        tile_size = DEFAULT_TILE_SIZE if height * width > AUTO_TILE_PIXELS else 0
    if tile_size and (height > tile_size or width > tile_size):
        result = np.stack([_enhance_tiled(generator, item, tile_size, overlap) for item in batch])
    else:
        result = compiled_enhance(generator)(batch)
    if single:
        result = result[0]
    return result[:, :, 0] if gray_2d else result


def _enhance_tiled(generator, image: np.ndarray, tile_size: int, overlap: int) -> np.ndarray:
    """One image ``[H, W, C]`` tile by tile, every tile normalised like the whole image."""
    if uses_instance_statistics(generator):
        enhance_with = compiled_with_statistics(generator)[1]
        statistics = image_statistics(generator, image)
        function = lambda tiles: enhance_with(tiles, statistics)  # noqa: E731
    else:
        function = compiled_enhance(generator)
    return blend_tiles(image, lambda tile: function(tile[None])[0], tile_size, overlap)


def enhance_files(
    generator,
    inputs: Sequence[str],
    out_dir: str,
    tile_size: Optional[int] = None,
    overlap: int = DEFAULT_TILE_OVERLAP,
    progress: Optional[Callable[[str], None]] = None,
    dicom_as: str = "dicom",
    overwrite: bool = False,
    model_name: Optional[str] = None,
    model_source: Optional[str] = None,
) -> FilesResult:
    """Enhances image files and folders into ``out_dir``, keeping names, folders, frames and bit depth.

    inputs: files and/or folders (searched recursively, see ``ssp_keras.data.listing.list_images``).
    Names and relative folders are kept. Every frame of a stack is enhanced (`enhance_array` per
    frame): a multi-page TIFF gives a multi-page TIFF, a multi-frame DICOM a multi-frame DICOM.
    DICOM inputs give derived DICOMs (patient and study kept, a new series named after
    ``model_name``, default the generator's name), or PNG with ``dicom_as="png"``; GIF inputs give
    PNG. 16-bit (and 12-bit, float) inputs give 16-bit PNG/TIFF outputs, 8-bit inputs 8-bit
    outputs; DICOM keeps the source's stored bit depth. Colour files are converted to the
    generator's channels on reading (BT.601 luma for a gray model).
    Writes are atomic; ``out_dir`` may not be, or lie inside, an input folder, no output may be an
    input, and existing outputs are refused unless ``overwrite`` (`InputError` before anything is
    read, see `plan_outputs`). See `enhance_array` for ``tile_size``/``overlap``.
    """
    channels = model_channels(generator)

    def transform(image, info):
        return enhance_array(generator, image, tile_size=tile_size, overlap=overlap), None

    return process_image_files(
        inputs, out_dir, transform, channels, progress,
        dicom_as=dicom_as,
        overwrite=overwrite,
        model_name=model_name or getattr(generator, "name", None) or "generator",
        model_source=model_source,
    )


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
    "model_channels",
    "pad_to_multiple",
    "plan_outputs",
    "process_image_files",
    "tile_starts",
]
