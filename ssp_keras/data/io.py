"""Reading and writing images in every format the project accepts.

Inside the library an image is a float32 array ``[H, W, C]`` with values in [0, 1] (see
CONTRIBUTING.md). This module is the only place that converts between that and files on disk:

* PNG (8- and 16-bit, gray, RGB, palette), JPEG, BMP and GIF (first frame) through Pillow, with
  OpenCV for 16-bit colour PNG (Pillow reduces it to 8 bits).
* TIFF through ``tifffile`` (8/16-bit, other integer types, float; every page of a multi-page
  stack), with Pillow as the fallback for compressions that need the optional ``imagecodecs``
  package (LZW, PackBits).
* DICOM through ``pydicom`` (modality LUT / rescale slope and intercept applied, scaled by the
  stored bit depth, MONOCHROME1 inverted; every frame of a multi-frame file).

Stacks (multi-page TIFF from confocal and other microscopes, multi-frame DICOM): `read_frames`
returns every frame; `read_image` returns the first and logs a warning naming the file (once per
file and process), so no frame is ever dropped silently. `write_frames` writes a multi-page TIFF
and `write_derived_dicom` a derived DICOM (patient and study kept, new series) holding them all.

Integer data are scaled by their bit depth, so a 16-bit value of 65535 reads as 1.0 and a 12-bit
DICOM value of 4095 reads as 1.0; nothing is clipped at 255. Float data already in [0, 1] are kept,
other float or signed data are scaled by their own range (`ssp_keras.data.samples`; `ImageInfo`
keeps the `SampleFormat`, so results can be written back in the input's own type and range).
Images are turned as their EXIF / TIFF orientation tag says, CMYK becomes RGB, and an alpha channel
is split off (`ssp_keras.data.layout`): `read_frames_and_alpha` returns it, the other readers drop
it. Images of any size are read (Pillow's decompression-bomb limit does not apply to the files a
user names); one too large for the memory available is refused with a reason. Anything that
cannot be decoded raises `UnreadableImageError` (an `InputError`) naming the file and the reason.

Writing (`write_image`, `write_frames`, `write_derived_dicom`) turns [0, 1] floats into 8 or 16
bits (16 for PNG and TIFF only, float32 TIFF with ``bit_depth=32``), or into a given `SampleFormat`
(any numeric type in TIFF), with an optional alpha channel; DICOM at the source's stored bit depth.
Every write is atomic, so a crash never leaves half a file.

This module held all of it; it now re-exports the names of the modules below, for one release.
Import from them: `ssp_keras.data.reading` (read_*, ImageInfo, convert_channels),
`ssp_keras.data.writing` (write_image, write_frames), `ssp_keras.data.dicom` (DICOM in and out),
`ssp_keras.data.listing` (list_images, expand_image_paths, scan_images), `ssp_keras.data.decoding`
(UnreadableImageError, the decoders, require_memory) and `ssp_keras.data.formats` (extensions).
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
