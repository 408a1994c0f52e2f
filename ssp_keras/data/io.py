"""Reading and writing images in every format the project accepts (re-exports, for one release).

This module held all of it; it now re-exports the names of the modules below. Import from them:
`ssp_keras.data.reading` (read_*, ImageInfo, convert_channels), `ssp_keras.data.writing`
(write_image, write_frames), `ssp_keras.data.dicom` (DICOM in and out), `ssp_keras.data.listing`
(list_images, expand_image_paths, scan_images), `ssp_keras.data.decoding` (UnreadableImageError,
the decoders, require_memory) and `ssp_keras.data.formats` (extensions).
"""

from ssp_keras.data.decoding import UnreadableImageError, available_memory_bytes, require_memory  # noqa: F401
from ssp_keras.data.dicom import dicom_frame_count, dicom_value_range, write_derived_dicom  # noqa: F401
from ssp_keras.data.formats import IMAGE_EXTENSIONS, WRITE_EXTENSIONS  # noqa: F401
from ssp_keras.data.listing import expand_image_paths, is_image_file, list_images, scan_images  # noqa: F401
from ssp_keras.data.reading import (  # noqa: F401
    LUMA_WEIGHTS,
    ImageInfo,
    convert_channels,
    read_frames,
    read_frames_and_alpha,
    read_image,
    read_image_shape,
    read_image_with_info,
)
from ssp_keras.data.writing import write_frames, write_image  # noqa: F401
