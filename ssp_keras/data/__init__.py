"""Images on disk and the training input pipeline.

* `ssp_keras.data.reading` / `ssp_keras.data.writing`: read every supported format as float32
  ``[H, W, C]`` in [0, 1] (decoders in `ssp_keras.data.decoding`, DICOM in `ssp_keras.data.dicom`);
  write PNG, JPEG, BMP and TIFF (8/16-bit, float) atomically. `ssp_keras.data.listing`: list and
  validate folders. (`ssp_keras.data.io` re-exports all of them for one release.)
* `ssp_keras.data.pipeline`: the two independent ``tf.data`` streams (LQ, HQ) of random crops.
* `ssp_keras.data.synthetic`: nerve-fibre images with known degradations and fibre masks.

The pipeline and generator names are imported lazily, so reading images does not start TensorFlow.
"""

from ssp_keras.data.decoding import UnreadableImageError  # noqa: F401
from ssp_keras.data.formats import IMAGE_EXTENSIONS, WRITE_EXTENSIONS  # noqa: F401
from ssp_keras.data.listing import is_image_file, list_images, scan_images  # noqa: F401
from ssp_keras.data.reading import (  # noqa: F401
    ImageInfo,
    convert_channels,
    read_image,
    read_image_shape,
    read_image_with_info,
)
from ssp_keras.data.writing import write_image  # noqa: F401

# Imported on first use: the pipeline starts TensorFlow, and importing `synthetic` here would
# make ``python -m ssp_keras.data.synthetic`` warn about a module imported twice.
_LAZY = {
    "make_unpaired_dataset": "pipeline",
    "make_eval_dataset": "pipeline",
    "decide_cache": "pipeline",
    "estimate_cache_bytes": "pipeline",
    "generate_pair": "synthetic",
    "generate_dataset": "synthetic",
    "degrade": "synthetic",
}

__all__ = [
    "IMAGE_EXTENSIONS",
    "WRITE_EXTENSIONS",
    "ImageInfo",
    "UnreadableImageError",
    "convert_channels",
    "is_image_file",
    "list_images",
    "read_image",
    "read_image_shape",
    "read_image_with_info",
    "scan_images",
    "write_image",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"ssp_keras.data.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'ssp_keras.data' has no attribute {name!r}")
