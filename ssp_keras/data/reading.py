"""Reading images in every format the project accepts, as float32 ``[H, W, C]`` in [0, 1].

Inside the library an image is a float32 array ``[H, W, C]`` with values in [0, 1] (see
CONTRIBUTING.md). The decoders (`ssp_keras.data.decoding` for PNG, JPEG, BMP, GIF and TIFF,
`ssp_keras.data.dicom` for DICOM) give raw samples; this module scales them and returns images.

Stacks (multi-page TIFF from confocal and other microscopes, multi-frame DICOM): `read_frames`
returns every frame; `read_image` returns the first and logs a warning naming the file (once per
file and process), so no frame is ever dropped silently.

Integer data are scaled by their bit depth, so a 16-bit value of 65535 reads as 1.0 and a 12-bit
DICOM value of 4095 reads as 1.0; nothing is clipped at 255. Float data already in [0, 1] are kept,
other float or signed data are scaled by their own range (`ssp_keras.data.samples`; `ImageInfo`
keeps the `SampleFormat`, so results can be written back in the input's own type and range).
Images are turned as their EXIF / TIFF orientation tag says, CMYK becomes RGB, and an alpha channel
is split off (`ssp_keras.data.layout`): `read_frames_and_alpha` returns it, the other readers drop
it. Anything that cannot be decoded raises `UnreadableImageError` (an `InputError`) naming the file
and the reason.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import List, Optional, Tuple

import numpy as np

from ssp_keras.data.decoding import (
    UnreadableImageError,
    decode_tiff,
    decode_with_pillow,
    describe_error,
    pillow_orientation,
    without_pillow_pixel_limit,
)
from ssp_keras.data.dicom import decode_dicom, dicom_shape
from ssp_keras.data.formats import DICOM_FORMATS, IMAGE_EXTENSIONS, PIL_FORMATS, TIFF_FORMATS, extension_of
from ssp_keras.data.layout import ORIENTATION_TAG, has_gray_content, oriented_size, split_alpha
from ssp_keras.data.samples import SampleFormat, frames_to_unit

logger = logging.getLogger(__name__)

# ITU-R BT.601 luma weights, the ones JPEG and most medical viewers use for RGB -> gray.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What the file held before conversion to float [0, 1].

    bit_depth: 8 or 16, the precision to write results back with where the source's own type
      does not fit the output format (16 for anything finer than 8 bits: 12/16-bit integers,
      DICOM, float TIFF).
    dtype: the numpy dtype of the decoded samples (``uint8``, ``uint16``, ``float32``, ...).
    channels: colour channels in the file after conversion to gray or RGB (1 or 3), alpha apart.
    format: ``png``, ``jpeg``, ``bmp``, ``gif``, ``tiff`` or ``dicom``.
    frames: frames (TIFF pages, DICOM frames, GIF frames) the file holds, whether or not all were
      read (`read_image` reads the first, `read_frames` every one of TIFF and DICOM).
    sample_format: how the samples map to [0, 1] (`ssp_keras.data.samples.SampleFormat`), to write
      results in the same type and range.
    colour: the file's colour model: ``gray``, ``RGB``, ``palette``, ``CMYK``, ``YCbCr``, ...
    gray_content: whether the colour channels are all equal (a gray image, possibly stored as RGB).
    alpha: whether the file has an alpha channel (`read_frames_and_alpha` returns it).
    """

    bit_depth: int
    dtype: str
    channels: int
    format: str
    frames: int = 1
    sample_format: Optional[SampleFormat] = None
    colour: str = "gray"
    gray_content: bool = True
    alpha: bool = False


# --------------------------------------------------------------------------------- reading
def read_image(path: str, channels: Optional[int] = None) -> np.ndarray:
    """Reads one image file as float32 ``[H, W, C]`` in [0, 1].

    channels: 1 converts colour to BT.601 luma, 3 replicates gray, None keeps the file's own
      (1 or 3; alpha is always dropped).
    Raises `UnreadableImageError` (an `InputError`) naming the file when it cannot be decoded.
    """
    return read_image_with_info(path, channels)[0]


def read_image_with_info(path: str, channels: Optional[int] = None) -> Tuple[np.ndarray, ImageInfo]:
    """Like `read_image`, also returning an `ImageInfo` (source bit depth, dtype, format).

    Of a stack (multi-page TIFF, multi-frame DICOM, animated GIF) only the first frame is decoded
    and returned; a warning names the file (once per file) and ``info.frames`` says how many it
    holds. `read_frames` reads them all.
    """
    frames, _, info = _read(path, channels, all_frames=False)
    if info.frames > 1:
        _warn_first_frame_only(path, info)
    return frames[0], info


def read_frames(path: str, channels: Optional[int] = None) -> Tuple[List[np.ndarray], ImageInfo]:
    """Every frame of an image file: a list of float32 ``[H, W, C]`` in [0, 1], and its `ImageInfo`.

    One element for ordinary images; every page of a multi-page TIFF and every frame of a
    multi-frame DICOM, in file order (pages may differ in size). Integer frames are scaled by the
    bit depth, float and signed TIFF stacks by the range of the whole stack (not frame by frame),
    so brightness stays comparable between frames. GIF animations give their first frame (with a
    warning, as `read_image`). ``channels`` as in `read_image`; `UnreadableImageError` naming the
    file when it cannot be decoded.
    """
    frames, _, info = read_frames_and_alpha(path, channels)
    return frames, info


def read_frames_and_alpha(
    path: str, channels: Optional[int] = None
) -> Tuple[List[np.ndarray], List[Optional[np.ndarray]], ImageInfo]:
    """`read_frames`, with each frame's alpha channel: ``(frames, alphas, info)``.

    ``alphas[i]`` is float32 ``[H, W, 1]`` in [0, 1] (scaled like the colour), or None when the
    file has none (``info.alpha``). Colour is converted to ``channels``; alpha never is.
    """
    frames, alphas, info = _read(path, channels, all_frames=True)
    if len(frames) < info.frames:
        _warn_first_frame_only(path, info)
    return frames, alphas, info


_WARNED_FIRST_FRAME: set = set()
_WARNED_LOCK = threading.Lock()


def _warn_first_frame_only(path: str, info: ImageInfo) -> None:
    """Logs once per file that only the first of its ``info.frames`` frames is used."""
    key = os.path.realpath(path)
    with _WARNED_LOCK:
        if key in _WARNED_FIRST_FRAME:
            return
        _WARNED_FIRST_FRAME.add(key)
    kind = {"tiff": "pages", "dicom": "frames"}.get(info.format, "frames")
    logger.warning(
        "'%s' holds %d %s; using only the first (ssp-net enhance enhances every TIFF page and DICOM frame)",
        path, info.frames, kind,
    )


def _read(path: str, channels: Optional[int], all_frames: bool):
    """``(colour frames, alpha frames or Nones, ImageInfo)`` of a file."""
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")
    extension = extension_of(path)
    if extension not in IMAGE_EXTENSIONS:
        raise UnreadableImageError(path, f"not an image file extension ({extension or 'none'})")
    if not os.path.isfile(path):
        raise UnreadableImageError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise UnreadableImageError(path, "file is empty (0 bytes)")
    try:
        if extension in TIFF_FORMATS:
            decoded = decode_tiff(path, all_frames)
        elif extension in DICOM_FORMATS:
            decoded = decode_dicom(path, all_frames)
        else:
            decoded = decode_with_pillow(path)
        samples = [_to_hwc(path, frame) for frame in decoded.frames]
        scaled, sample_format = frames_to_unit(path, samples, decoded.bit_depth)
    except UnreadableImageError:
        raise
    except Exception as error:  # every decoder has its own error types; all mean "unreadable"
        raise UnreadableImageError(path, describe_error(error)) from error
    images, alphas = zip(*(split_alpha(image) for image in scaled))
    images, alphas = list(images), list(alphas)
    info = ImageInfo(
        bit_depth=8 if decoded.bit_depth <= 8 else 16,
        dtype=decoded.source_dtype or str(decoded.frames[0].dtype),
        channels=images[0].shape[-1],
        format=decoded.format,
        frames=max(decoded.total_frames, len(images)),
        sample_format=sample_format,
        colour=decoded.colour or ("gray" if images[0].shape[-1] == 1 else "RGB"),
        gray_content=all(has_gray_content(image) for image in images),
        alpha=any(alpha is not None for alpha in alphas),
    )
    if len({image.shape[-1] for image in images}) > 1:  # e.g. a gray page in an RGB stack
        images = [convert_channels(image, info.channels) for image in images]
    return [convert_channels(image, channels) for image in images], alphas, info


def _to_hwc(path: str, samples: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, C] with C in 1..4 becomes [H, W, C] (gray, gray + alpha, RGB, RGBA)."""
    samples = np.asarray(samples)
    while samples.ndim > 3 and samples.shape[0] == 1:  # leading singleton axes (e.g. TIFF Z=1)
        samples = samples[0]
    if samples.ndim == 2:
        samples = samples[:, :, np.newaxis]
    if samples.ndim != 3 or samples.shape[-1] not in (1, 2, 3, 4):
        raise UnreadableImageError(path, f"unsupported sample layout {samples.shape}")
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise UnreadableImageError(path, f"image has no pixels (shape {samples.shape})")
    return samples


def convert_channels(image: np.ndarray, channels: Optional[int]) -> np.ndarray:
    """``[H, W, 1|3]`` to ``channels`` (1: BT.601 luma, 3: replicated gray, None: unchanged)."""
    have = image.shape[-1]
    if channels is None or channels == have:
        return image
    if channels == 1:
        luma = image @ LUMA_WEIGHTS  # weights sum to 1 (up to rounding): clip the rounding
        return np.clip(luma, 0.0, 1.0)[:, :, np.newaxis].astype(np.float32)
    if channels == 3:
        return np.repeat(image, 3, axis=-1)
    raise ValueError(f"channels must be 1, 3 or None, got {channels!r}")


def read_image_shape(path: str) -> Tuple[int, int, int]:
    """``(height, width, channels)`` of a file from its header, without decoding the pixels.

    Used to estimate memory (caching decisions). Falls back to decoding when the header is not
    enough. Raises `UnreadableImageError` for files that are not images.
    """
    extension = extension_of(path)
    try:
        if extension in TIFF_FORMATS:
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages.first
                orientation = page.tags.valueof(ORIENTATION_TAG)
                height, width = oriented_size(int(page.imagelength), int(page.imagewidth), orientation)
                return height, width, 1 if page.samplesperpixel < 3 else 3
        if extension in DICOM_FORMATS:
            return dicom_shape(path)
        if extension in PIL_FORMATS:
            from PIL import Image

            with without_pillow_pixel_limit(), Image.open(path) as handle:
                gray = handle.mode in ("1", "L", "LA", "La", "I", "F") or handle.mode.startswith("I;16")
                height, width = oriented_size(handle.height, handle.width, pillow_orientation(handle))
                return height, width, 1 if gray else 3
    except Exception:  # an odd header: decoding gives the answer or the proper error
        pass
    image = read_image(path)
    return image.shape[0], image.shape[1], image.shape[2]
