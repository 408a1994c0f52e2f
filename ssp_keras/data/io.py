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
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import io
import datetime
import logging
import os
import threading
import warnings
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from ssp_keras.data.layout import ORIENTATION_TAG, apply_orientation, cmyk_to_rgb, has_gray_content, oriented_size, split_alpha
from ssp_keras.data.samples import SampleFormat, frames_to_unit
from ssp_keras.errors import InputError
from ssp_keras.utils.files import atomic_write_bytes

logger = logging.getLogger(__name__)

#: File name endings (lower case) that are treated as images. Files without an extension are not.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".dcm")

#: Endings `write_image` can produce.
WRITE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# ITU-R BT.601 luma weights, the ones JPEG and most medical viewers use for RGB -> gray.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

_PIL_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_TIFF_FORMATS = (".tif", ".tiff")
_DICOM_FORMATS = (".dcm",)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class UnreadableImageError(InputError):
    """A file that is not a decodable image. ``path`` and ``reason`` are kept for reports."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read image '{path}': {reason}")
        self.path = path
        self.reason = reason


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


# --------------------------------------------------------------------------------- listing
def is_image_file(path: str) -> bool:
    """True when ``path`` ends in one of `IMAGE_EXTENSIONS` (case-insensitive)."""
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def list_images(folder: str) -> List[str]:
    """All image files below ``folder`` (recursive), sorted by path so runs are reproducible.

    Hidden files and folders (names starting with ``.``: temporary files of atomic writes,
    macOS ``._*`` resource forks) are ignored; links to folders inside are not followed (no cycles). Raises `InputError` when ``folder`` does not exist,
    is not a folder, or holds no image file.
    """
    if not os.path.exists(folder):
        raise InputError(f"image folder not found: '{folder}'")
    if not os.path.isdir(folder):
        raise InputError(f"not a folder: '{folder}'")
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found.extend(
            os.path.join(root, name)
            for name in names
            if not name.startswith(".") and is_image_file(name)
        )
    if not found:
        raise InputError(
            f"no image files in '{folder}' (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)"
        )
    return sorted(found)


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
    extension = os.path.splitext(path)[1].lower()
    if extension not in IMAGE_EXTENSIONS:
        raise UnreadableImageError(path, f"not an image file extension ({extension or 'none'})")
    if not os.path.isfile(path):
        raise UnreadableImageError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise UnreadableImageError(path, "file is empty (0 bytes)")
    try:
        if extension in _TIFF_FORMATS:
            decoded = _decode_tiff(path, all_frames)
        elif extension in _DICOM_FORMATS:
            decoded = _decode_dicom(path, all_frames)
        else:
            decoded = _decode_with_pillow(path)
        samples = [_to_hwc(path, frame) for frame in decoded.frames]
        scaled, sample_format = frames_to_unit(path, samples, decoded.bit_depth)
    except UnreadableImageError:
        raise
    except Exception as error:  # every decoder has its own error types; all mean "unreadable"
        raise UnreadableImageError(path, _describe(error)) from error
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


class _Decoded(NamedTuple):
    """What a decoder returns: raw samples and how to interpret them."""

    frames: List[np.ndarray]  # each [H, W] or [H, W, C] in the file's own dtype (DICOM: float in [0, 1]), alpha last
    bit_depth: int  # significant bits per sample (8, 12, 16, 32 for float)
    format: str
    source_dtype: Optional[str] = None  # when samples were converted already (DICOM)
    total_frames: int = 1  # frames in the file (more than len(frames) when only the first was read)
    colour: str = ""  # the file's colour model when it is not plain gray or RGB (palette, CMYK, ...)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _decode_with_pillow(path: str, all_frames: bool = False) -> _Decoded:
    """PNG, JPEG, BMP, GIF (and the TIFF fallback). Returns raw samples, bit depth, format.

    The first frame, or with ``all_frames`` every frame of a multi-page TIFF (GIF animations
    always give their first frame; ``total_frames`` tells how many they hold), turned as its EXIF
    orientation says. Pillow's decompression-bomb limit is lifted: the user named this file, and
    `require_memory` refuses one that cannot fit instead.
    """
    from PIL import Image

    if _is_16_bit_alpha_or_colour_png(path):
        return _decode_png_16_bit(path)
    frames = []
    with warnings.catch_warnings(), _without_pillow_pixel_limit():
        warnings.simplefilter("ignore")  # palette-transparency and EXIF chatter
        with Image.open(path) as handle:
            file_format = (handle.format or "unknown").lower()
            total = int(getattr(handle, "n_frames", 1) or 1)
            wanted = total if all_frames and file_format == "tiff" else 1
            bands = len(handle.getbands())
            require_memory(path, handle.height * handle.width * max(bands, 1) * wanted, handle.height, handle.width)
            orientation = _pillow_orientation(handle)
            colour = _PILLOW_COLOUR_MODELS.get(handle.mode.split(";")[0], "")
            for index in range(wanted):
                if index:
                    handle.seek(index)
                handle.load()  # decodes everything: raises on truncated or corrupt data
                frames.append(apply_orientation(np.asarray(_pillow_to_plain_mode(handle)), orientation))
    frames = [
        frame.astype(frame.dtype.newbyteorder("=")) if frame.dtype.byteorder not in ("=", "|") else frame
        for frame in frames
    ]
    bit_depth = 8 if all(frame.dtype == np.uint8 for frame in frames) else 16
    return _Decoded(frames, bit_depth, file_format, total_frames=total, colour=colour)


#: Pillow modes whose colour model is neither gray nor RGB, by the name messages use.
_PILLOW_COLOUR_MODELS = {"P": "palette", "PA": "palette", "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "LAB",
                         "HSV": "HSV"}
_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_pillow_pixel_limit():
    """Pillow refuses images over ``Image.MAX_IMAGE_PIXELS`` (89 Mpx) as possible decompression
    bombs; a file the user names is read whatever its size (`require_memory` guards the memory)."""
    from PIL import Image

    with _PILLOW_LIMIT_LOCK:
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _pillow_orientation(image) -> Optional[int]:
    try:
        return image.getexif().get(ORIENTATION_TAG)
    except Exception:  # a damaged EXIF block: show the pixels as stored
        return None


def require_memory(path: str, samples: int, height: int, width: int, bytes_per_sample: int = 1) -> None:
    """`UnreadableImageError` when decoding ``samples`` samples (and their float copies) cannot fit
    in the memory this machine has available; silent when that is unknown.

    Reading and enhancing an image holds its samples, the float32 image, the float32 result and a
    copy for the whole-image statistics of tiled enhancement (tiles themselves take a fixed
    amount): about ``bytes_per_sample + 16`` bytes a sample (measured: a 14000x14000 8-bit PNG is
    enhanced in 4.2 GB, 0.8 GB of it TensorFlow and the model).
    """
    available = available_memory_bytes()
    needed = samples * (bytes_per_sample + 16)
    if available is not None and needed > available:
        raise UnreadableImageError(
            path, f"{width}x{height} pixels would need about {needed / 2**30:.1f} GiB of memory to read and "
            f"enhance, more than the {available / 2**30:.1f} GiB available")


def available_memory_bytes() -> Optional[int]:
    """Memory available to new allocations (Linux's MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _pillow_to_plain_mode(image):
    """Converts Pillow's many modes to L, LA, RGB(A), I;16, I or F so numpy sees plain samples."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return image
    if mode.startswith("I;16"):
        return image if mode == "I;16" else image.convert("I")
    if mode == "1":
        return image.convert("L")
    if mode in ("La", "PA", "RGBa") or (mode == "P" and "transparency" in image.info):
        return image.convert("RGBA" if mode != "La" else "LA")  # alpha kept (un-premultiplied)
    # P, CMYK, YCbCr, LAB, HSV, RGBX, ...: RGB (Pillow's CMYK conversion handles Adobe's inverted JPEGs)
    return image.convert("RGB")


def _is_16_bit_alpha_or_colour_png(path: str) -> bool:
    """Reads the PNG header: 16-bit gray+alpha, RGB and RGBA are the PNG kinds Pillow cannot keep
    at 16 bits (it reduces them to 8)."""
    with open(path, "rb") as stream:
        header = stream.read(26)
    return (
        len(header) == 26
        and header.startswith(_PNG_SIGNATURE)
        and header[12:16] == b"IHDR"
        and header[24] == 16
        and header[25] in (2, 4, 6)
    )


def _decode_png_16_bit(path: str) -> _Decoded:
    import cv2

    with open(path, "rb") as stream:
        data = stream.read()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    gray_alpha = data[25] == 4
    require_memory(path, height * width * (2 if gray_alpha else 4), height, width, bytes_per_sample=2)
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise UnreadableImageError(path, "corrupt or truncated 16-bit PNG")
    if decoded.ndim == 3:  # OpenCV orders channels BGR(A)
        decoded = decoded[..., [2, 1, 0] + ([3] if decoded.shape[-1] == 4 else [])]
    if gray_alpha and decoded.ndim == 3 and decoded.shape[-1] == 4:  # OpenCV gives gray + alpha as BGRA
        decoded = decoded[..., [0, 3]]
    return _Decoded([decoded], 16, "png")


def _decode_tiff(path: str, all_frames: bool = False) -> _Decoded:
    """The first page (or every page) of a TIFF with tifffile; Pillow for compressions tifffile
    cannot decode here. Each page is decoded on its own (photometric, palette, planar layout,
    orientation); CMYK becomes RGB, an extra sample after the colour is kept as alpha."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.pages:
                raise UnreadableImageError(path, "TIFF has no pages")
            total = len(tiff.pages)
            pages = list(tiff.pages) if all_frames else [tiff.pages.first]
            require_memory(path, sum(int(np.prod(page.shape)) for page in pages), pages[0].imagelength,
                           pages[0].imagewidth, bytes_per_sample=pages[0].dtype.itemsize if pages[0].dtype else 1)
            frames, bits, colours = [], [], set()
            for page in pages:
                samples, bits_per_sample, colour = _tiff_page_samples(page)
                frames.append(samples)
                bits.append(bits_per_sample)
                colours.add(colour)
    except (KeyError, ValueError) as error:  # the error type differs between tifffile versions
        if "imagecodecs" not in str(error):
            raise
        # LZW/PackBits/JPEG-in-TIFF need the optional imagecodecs package; Pillow reads most.
        logger.debug("tifffile cannot decode %s (%s); trying Pillow", path, error)
        return _decode_with_pillow(path, all_frames)._replace(format="tiff")
    colour = "/".join(sorted(colours - {""}))
    return _Decoded(frames, max(bits), "tiff", total_frames=total, colour=colour)


def _tiff_page_samples(page) -> Tuple[np.ndarray, int, str]:
    """One TIFF page's samples (``[H, W]`` or ``[H, W, C]``, as displayed), bits per sample, and
    its colour model when neither gray nor RGB."""
    import tifffile

    samples = page.asarray()
    bits_per_sample = page.bitspersample
    colour = ""
    if page.axes.startswith("S") and samples.ndim == 3:  # planar configuration: samples first
        samples = np.moveaxis(samples, 0, -1)
    if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
        samples = np.moveaxis(page.colormap[:, samples], 0, -1)  # colormap is [3, 2**bits] uint16
        bits_per_sample = 16
        colour = "palette"
    if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE and np.issubdtype(samples.dtype, np.integer):
        samples = np.iinfo(samples.dtype).max - samples
    if page.photometric == tifffile.PHOTOMETRIC.SEPARATED and samples.ndim == 3 and samples.shape[-1] >= 4:
        samples = cmyk_to_rgb(samples)  # (inks: CMYK is the only ink set TIFF writers use in practice)
        colour = "CMYK"
    orientation = page.tags.valueof(ORIENTATION_TAG)
    return apply_orientation(samples, int(orientation) if orientation else None), int(bits_per_sample), colour


def _decode_dicom(path: str, all_frames: bool = False) -> _Decoded:
    """The first frame (or every frame) of a DICOM file, modality LUT applied, as float in [0, 1].

    Scaled by the range the stored bits can hold (BitsStored, signed or not, mapped through the
    rescale slope/intercept), not by the frame's own min/max, so brightness is comparable between
    files and frames. MONOCHROME1 (white = 0) is inverted. `dicom_value_range` gives that range.
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(path, force=True)
    if "PixelData" not in dataset:
        raise UnreadableImageError(path, "DICOM file has no pixel data")
    total = int(dataset.get("NumberOfFrames", 1) or 1)
    if total > 1 and not all_frames:
        dataset.pixel_array_options(index=0)  # decode only the first frame, not the whole volume
    pixels = dataset.pixel_array
    samples_per_pixel = int(dataset.get("SamplesPerPixel", 1))
    bits_stored = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    stacked = pixels if total > 1 and all_frames else pixels[np.newaxis]
    frames = []
    if samples_per_pixel == 1:
        low, high = dicom_value_range(dataset)
        inverted = str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
        for frame in stacked:  # frame by frame: float64 of a whole volume is 8 bytes a sample
            image = (apply_modality_lut(frame, dataset).astype(np.float64) - low) / max(high - low, 1e-12)
            if inverted:
                image = 1.0 - image
            frames.append(np.clip(image, 0.0, 1.0).astype(np.float32))
    else:  # colour DICOM: pydicom already converted YBR to RGB
        for frame in stacked:
            frames.append(np.clip(frame.astype(np.float64) / (2**bits_stored - 1), 0.0, 1.0).astype(np.float32))
    return _Decoded(frames, bits_stored, "dicom", str(pixels.dtype), total_frames=total)


def dicom_value_range(dataset) -> Tuple[float, float]:
    """``(low, high)``: the modality values (after rescale or LUT) that read as 0 and 1.

    The smallest and largest value the stored bits (BitsStored, PixelRepresentation) map to
    through the modality LUT or rescale slope/intercept of ``dataset`` (a pydicom Dataset).
    """
    from pydicom.pixels import apply_modality_lut

    bits_stored = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    stored_low, stored_high = _stored_range(dataset)
    if bits_stored <= 16:  # a LUT may be non-monotonic: map every stored value
        stored_range = np.arange(stored_low, stored_high + 1)
    else:
        stored_range = np.array([stored_low, stored_high])
    mapped = apply_modality_lut(stored_range, dataset)
    return float(np.min(mapped)), float(np.max(mapped))


def _stored_range(dataset) -> Tuple[int, int]:
    bits_stored = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    if int(dataset.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
    return 0, 2**bits_stored - 1


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
    extension = os.path.splitext(path)[1].lower()
    try:
        if extension in _TIFF_FORMATS:
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                page = tiff.pages.first
                orientation = page.tags.valueof(ORIENTATION_TAG)
                height, width = oriented_size(int(page.imagelength), int(page.imagewidth), orientation)
                return height, width, 1 if page.samplesperpixel < 3 else 3
        if extension in _DICOM_FORMATS:
            import pydicom

            dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            spp = int(dataset.get("SamplesPerPixel", 1))
            return int(dataset.Rows), int(dataset.Columns), 1 if spp == 1 else 3
        if extension in _PIL_FORMATS:
            from PIL import Image

            with _without_pillow_pixel_limit(), Image.open(path) as handle:
                gray = handle.mode in ("1", "L", "LA", "La", "I", "F") or handle.mode.startswith("I;16")
                height, width = oriented_size(handle.height, handle.width, _pillow_orientation(handle))
                return height, width, 1 if gray else 3
    except Exception:  # an odd header: decoding gives the answer or the proper error
        pass
    image = read_image(path)
    return image.shape[0], image.shape[1], image.shape[2]


# --------------------------------------------------------------------------------- scanning
def expand_image_paths(
    paths_or_folders: Union[str, Sequence[str]], missing: str = "image file or folder not found: '{}'"
) -> List[str]:
    """Files as given and the images of folders (``list_images``), in order.

    A path that does not exist raises `InputError` with ``missing`` formatted with it: a
    mistyped path is an error, not a file to skip.
    """
    if isinstance(paths_or_folders, (str, os.PathLike)):
        paths_or_folders = [paths_or_folders]
    files: List[str] = []
    for source in (os.fspath(item) for item in paths_or_folders):
        if not os.path.exists(source):
            raise InputError(missing.format(source))
        files.extend(list_images(source) if os.path.isdir(source) else [source])
    return files


def scan_images(
    paths_or_folders: Union[str, Sequence[str]],
    channels: Optional[int] = None,
    max_workers: Optional[int] = None,
) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Checks that every image decodes, so training never meets a bad file half-way.

    paths_or_folders: files and/or folders (folders are listed with `list_images`); a path that
      does not exist raises `InputError` at once.
    Returns ``(readable, skipped)``: readable paths in order, and ``(path, reason)`` for each
    file that could not be decoded. Each skipped file is logged as a warning naming it, followed
    by a count ("skipped 2 of 14 files"). Files are fully decoded (in a thread pool: the decoders
    release the GIL), which is the only reliable way to catch truncated JPEGs.
    Raises `InputError` when no file is readable.
    """
    if isinstance(paths_or_folders, (str, os.PathLike)):
        paths_or_folders = [paths_or_folders]
    sources = [os.fspath(item) for item in paths_or_folders]
    if not sources:
        raise InputError("no image files or folders given")
    files = expand_image_paths(sources)

    def check(path: str) -> Optional[str]:
        try:
            read_image(path, channels)
        except UnreadableImageError as error:
            return error.reason
        return None

    workers = max_workers or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(check, files))
    readable = [path for path, reason in zip(files, reasons) if reason is None]
    skipped = [(path, reason) for path, reason in zip(files, reasons) if reason is not None]
    for path, reason in skipped:
        logger.warning("skipping unreadable image '%s': %s", path, reason)
    if skipped:
        logger.warning("skipped %d of %d files in %s", len(skipped), len(files), _names(sources))
    if not readable:
        first_path, first_reason = skipped[0]
        raise InputError(
            f"no readable image in {_names(sources)}: all {len(files)} files failed "
            f"(first: '{first_path}': {first_reason})"
        )
    return readable, skipped


def _names(sources: Iterable[str]) -> str:
    sources = list(sources)
    shown = ", ".join(f"'{source}'" for source in sources[:3])
    return shown + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")


# --------------------------------------------------------------------------------- writing
def write_image(path: str, image: np.ndarray, bit_depth: int = 8, sample_format: Optional[SampleFormat] = None) -> None:
    """Writes a float image in [0, 1] (``[H, W]`` or ``[H, W, 1|3]``) atomically.

    The format follows the extension (`WRITE_EXTENSIONS`). bit_depth 8 works everywhere; 16 needs
    PNG or TIFF; 32 writes a float32 TIFF; ``sample_format`` instead, as in `write_frames`. Values
    outside [0, 1] are clipped; NaN/Inf raise `ValueError`. Callers make sure ``path`` is not an
    input (`check_output_location`).
    """
    write_frames(path, [image], bit_depth=bit_depth, sample_format=sample_format)


def write_frames(
    path: str,
    frames: Sequence[np.ndarray],
    bit_depth: int = 8,
    sample_format: Optional[SampleFormat] = None,
    alphas: Optional[Sequence[Optional[np.ndarray]]] = None,
) -> None:
    """Writes float frames in [0, 1] atomically: a multi-page TIFF, or one frame in any format.

    frames: ``[H, W]`` / ``[H, W, 1|3]`` arrays (a ``[F, H, W, C]`` array works too); TIFF pages
      may differ in size. Every page gets the same sample type: ``sample_format`` when given
      (`ssp_keras.data.samples.SampleFormat`: any numeric type and range in TIFF, 8 or 16 bits in
      PNG, 8 elsewhere), else ``bit_depth`` as in `write_image` (8 -> uint8, 16 -> uint16, 32 ->
      float32); zlib-compressed TIFF. Formats other than TIFF hold one frame only (`ValueError`
      for more).
    alphas: per frame, an alpha channel ``[H, W(, 1)]`` in [0, 1] or None, written after the colour
      (gray + alpha or RGBA; not in JPEG, which has none: `ValueError`).
    """
    from ssp_keras.data.samples import can_hold

    extension = os.path.splitext(path)[1].lower()
    if extension not in WRITE_EXTENSIONS:
        raise InputError(
            f"cannot write '{path}': unsupported extension {extension or '(none)'}; "
            f"use one of {', '.join(WRITE_EXTENSIONS)}"
        )
    if sample_format is None:
        allowed = (8, 16, 32) if extension in _TIFF_FORMATS else (8, 16) if extension == ".png" else (8,)
        if bit_depth not in allowed:
            raise ValueError(f"cannot write '{path}' with bit_depth={bit_depth}: {extension} allows {allowed}")
        sample_format = SampleFormat.of_bit_depth(bit_depth)
    elif not can_hold(extension, sample_format.dtype):
        raise ValueError(f"cannot write '{path}' with {sample_format.dtype} samples: {extension} cannot hold them")
    if len(frames) == 0:
        raise ValueError(f"cannot write '{path}': no frames given")
    if len(frames) > 1 and extension not in _TIFF_FORMATS:
        raise ValueError(f"cannot write {len(frames)} frames to '{path}': only TIFF holds several")
    alphas = list(alphas) if alphas is not None else [None] * len(frames)
    if any(alpha is not None for alpha in alphas) and extension in (".jpg", ".jpeg"):
        raise ValueError(f"cannot write '{path}' with an alpha channel: JPEG has none")
    samples = [_samples(path, frame, alpha, sample_format) for frame, alpha in zip(frames, alphas)]
    atomic_write_bytes(path, _encode(path, extension, samples))


def _samples(path: str, image: np.ndarray, alpha: Optional[np.ndarray], sample_format: SampleFormat) -> np.ndarray:
    """Float [0, 1] ``[H, W(, 1|3)]`` (and alpha) to samples ``[H, W]`` or ``[H, W, 2|3|4]``."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(
            f"cannot write '{path}': image must be [H, W], [H, W, 1] or [H, W, 3], got {image.shape}"
        )
    if alpha is not None:
        alpha = np.asarray(alpha, dtype=np.float32).reshape(image.shape[:2] + (1,))
        image = np.concatenate([image, alpha], axis=-1)
    if not all(np.isfinite(band).all() for band in np.array_split(image, max(1, image.size // 2**22))):
        raise ValueError(f"cannot write '{path}': image contains NaN or infinite values")
    samples = sample_format.from_unit(image)
    return samples[:, :, 0] if samples.shape[-1] == 1 else samples


def _encode(path: str, extension: str, frames: List[np.ndarray]) -> bytes:
    if extension in _TIFF_FORMATS:
        import tifffile

        buffer = io.BytesIO()

        def layout(frame):  # photometric and the alpha sample of gray + alpha / RGBA
            colour = frame.shape[-1] if frame.ndim == 3 else 1
            return {"photometric": "rgb" if colour in (3, 4) else "minisblack",
                    "extrasamples": ["unassalpha"] if colour in (2, 4) else None}

        # zlib (deflate) is built in and read by every TIFF reader, unlike LZW here.
        if len({frame.shape for frame in frames}) == 1:
            # One series of F pages: what ImageJ/Fiji and tifffile read back as one [F, H, W(, C)] stack.
            stack = frames[0] if len(frames) == 1 else np.stack(frames)
            tifffile.imwrite(buffer, stack, compression="zlib", **layout(frames[0]))
        else:
            with tifffile.TiffWriter(buffer) as writer:
                for frame in frames:
                    writer.write(frame, compression="zlib", **layout(frame))
        return buffer.getvalue()
    (samples,) = frames
    if samples.ndim == 3 and samples.shape[-1] == 2:  # gray + alpha: OpenCV writes 1, 3 or 4 channels
        if extension != ".png":
            samples = samples[..., [0, 0, 0, 1]]  # BMP holds it as RGBA
        else:
            return _encode_png_gray_alpha(samples)
    import cv2

    if samples.ndim == 3:
        order = [2, 1, 0] + ([3] if samples.shape[-1] == 4 else [])
        samples = np.ascontiguousarray(samples[..., order])  # OpenCV expects BGR(A)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if extension in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(extension, samples, params)
    if not ok:
        raise OSError(f"could not encode '{path}' as {extension}")
    return encoded.tobytes()


def _encode_png_gray_alpha(samples: np.ndarray) -> bytes:
    """A PNG of colour type 4 (gray + alpha, 8 or 16 bits) from ``[H, W, 2]`` uint8/uint16 samples.

    Neither OpenCV (1, 3 or 4 channels) nor Pillow (8-bit only) writes it; the format is three
    chunks: IHDR, the zlib-compressed rows (filter byte 0 each), IEND.
    """
    import struct
    import zlib

    height, width, _ = samples.shape
    depth = 16 if samples.dtype == np.uint16 else 8
    rows = samples.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, depth, 4, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------------- DICOM out
#: Elements of the source that describe pixel values the derived image no longer has.
_DICOM_DROPPED = (
    "PixelData", "FloatPixelData", "DoubleFloatPixelData", "ModalityLUTSequence", "IconImageSequence",
    "SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries", "PixelPaddingValue", "PixelPaddingRangeLimit", "PlanarConfiguration",
    "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData", "PaletteColorLookupTableUID", "SourceImageSequence",
)
#: Elements that only mean something for grayscale pixels (dropped when writing RGB).
_DICOM_GRAY_ONLY = ("RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth",
                    "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence")


def dicom_frame_count(path: str) -> int:
    """NumberOfFrames from a DICOM file's header (1 when absent or unreadable)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        return max(int(dataset.get("NumberOfFrames", 1) or 1), 1)
    except Exception:  # unreadable files are reported when they are decoded
        return 1


def write_derived_dicom(
    path: str,
    frames: Sequence[np.ndarray],
    source: str,
    series_description: str,
    derivation_description: str,
    series_uid: Union[str, Dict[str, str], None] = None,
) -> None:
    """Writes ``frames`` (float [0, 1] ``[H, W(, 1|3)]``, all one size) as a DICOM derived from ``source``.

    The result copies the source's header (patient, study, equipment, geometry, SOP class), and
    gets: a new SOP Instance UID, a Series Instance UID (``series_uid`` when a string; when a dict,
    the one it maps the source's series to, added if missing, so that the files of one source
    series stay one derived series; a new one when None), ImageType
    ``DERIVED\\SECONDARY`` (the source's further values kept), the given SeriesDescription (cut to
    64 characters) and DerivationDescription, a SourceImageSequence naming the source instance,
    and NumberOfFrames = ``len(frames)``. Pixels are stored at the source's BitsAllocated /
    BitsStored / PixelRepresentation, spread over the range the source's stored values could hold,
    with a rescale slope/intercept (when the source had a modality transform) that maps them onto
    the source's modality value range: reading the result with `read_frames` gives back
    ``frames`` to within one stored level. MONOCHROME1 sources stay MONOCHROME1. Uncompressed
    (Explicit VR Little Endian), written atomically.
    """
    import pydicom

    images = [_dicom_frame(path, frame) for frame in frames]
    if not images:
        raise ValueError(f"cannot write '{path}': no frames given")
    if len({image.shape for image in images}) > 1:
        sizes = sorted({image.shape for image in images})
        raise ValueError(f"cannot write '{path}': DICOM frames must share one size, got {sizes}")
    try:
        original = pydicom.dcmread(source, force=True, stop_before_pixels=True)
    except Exception as error:
        raise UnreadableImageError(source, _describe(error)) from error
    dataset = copy.deepcopy(original)  # the header; pixel descriptions are rebuilt below
    _delete_elements(dataset, _DICOM_DROPPED)
    encoding = _DicomEncoding.of(original, channels=images[0].shape[-1])
    images = _set_value_transform(dataset, original, images, encoding)
    _set_pixels(dataset, original, images, encoding)
    _set_derivation(dataset, original, source, series_uid, series_description, derivation_description)
    _save_dicom(dataset, path)


class _DicomEncoding(NamedTuple):
    """How a derived DICOM stores its pixels: the source's bit layout, within what it can hold."""

    channels: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    stored_low: int
    stored_high: int
    photometric: str

    @classmethod
    def of(cls, original, channels: int) -> "_DicomEncoding":
        source_gray = int(original.get("SamplesPerPixel", 1)) == 1
        bits_allocated = int(original.get("BitsAllocated", 16))
        if bits_allocated not in (8, 16, 32):
            bits_allocated = 16
        bits_stored = min(int(original.get("BitsStored", bits_allocated)), bits_allocated)
        signed = channels == 1 and source_gray and int(original.get("PixelRepresentation", 0)) == 1
        if signed:
            stored_low, stored_high = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
        else:
            stored_low, stored_high = 0, 2**bits_stored - 1
        if channels == 1:
            source_photometric = str(original.get("PhotometricInterpretation", "")).upper()
            photometric = "MONOCHROME1" if source_photometric == "MONOCHROME1" else "MONOCHROME2"
        else:
            photometric = "RGB"
        return cls(channels, bits_allocated, bits_stored, signed, stored_low, stored_high, photometric)

    def store(self, images: Sequence[np.ndarray]) -> bytes:
        """Float [0, 1] frames as the stored values' bytes (even length, as DICOM values are)."""
        sizes = {8: "1", 16: "2", 32: "4"}
        kind = ("<i" if self.signed else "<u") + sizes[self.bits_allocated]
        low, high = self.stored_low, self.stored_high
        stored = np.stack([
            np.clip(np.round(low + image.astype(np.float64) * (high - low)), low, high) for image in images
        ]).astype(kind)
        if self.channels == 1:
            stored = stored[..., 0]
        data = stored.tobytes()
        return data + b"\0" if len(data) % 2 else data


def _delete_elements(dataset, keywords: Sequence[str]) -> None:
    for keyword in keywords:
        if keyword in dataset:
            del dataset[keyword]


def _set_value_transform(dataset, original, images: List[np.ndarray], encoding: _DicomEncoding) -> List[np.ndarray]:
    """Photometric inversion, rescale slope/intercept or the colour elements; returns the frames to store.

    The rescale (when the source had a modality transform) maps the stored range onto the source's
    modality value range; MONOCHROME1 frames are stored inverted (`read_frames` inverts them back).
    """
    from pydicom.valuerep import DSfloat

    source_gray = int(original.get("SamplesPerPixel", 1)) == 1
    if encoding.channels != 1:
        _delete_elements(dataset, _DICOM_GRAY_ONLY)
        dataset.PlanarConfiguration = 0
        return images
    if encoding.photometric == "MONOCHROME1":
        images = [1.0 - image for image in images]
    if source_gray and ("RescaleSlope" in original or "ModalityLUTSequence" in original):
        low, high = dicom_value_range(original)
        slope = (high - low) / (encoding.stored_high - encoding.stored_low)
        dataset.RescaleSlope = DSfloat(slope, auto_format=True)
        dataset.RescaleIntercept = DSfloat(low - slope * encoding.stored_low, auto_format=True)
        if "RescaleType" not in dataset and "ModalityLUTSequence" in original:
            lut_type = original.ModalityLUTSequence[0].get("ModalityLUTType")
            if lut_type:
                dataset.RescaleType = lut_type
    elif not source_gray:
        _delete_elements(dataset, _DICOM_GRAY_ONLY)
    return images


def _set_pixels(dataset, original, images: List[np.ndarray], encoding: _DicomEncoding) -> None:
    """The image pixel module: size, layout and PixelData."""
    height, width, channels = images[0].shape
    dataset.Rows, dataset.Columns = height, width
    dataset.SamplesPerPixel = channels
    dataset.PhotometricInterpretation = encoding.photometric
    dataset.BitsAllocated = encoding.bits_allocated
    dataset.BitsStored = encoding.bits_stored
    dataset.HighBit = encoding.bits_stored - 1
    dataset.PixelRepresentation = 1 if encoding.signed else 0
    if len(images) > 1 or "NumberOfFrames" in original:
        dataset.NumberOfFrames = len(images)
    dataset.PixelData = encoding.store(images)
    dataset["PixelData"].VR = "OB" if encoding.bits_allocated == 8 else "OW"


def _set_derivation(dataset, original, source: str, series_uid, series_description: str,
                    derivation_description: str) -> None:
    """New instance and series, ImageType DERIVED, descriptions, the source reference, dates."""
    import pydicom
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    sop_class = original.get("SOPClassUID") or SecondaryCaptureImageStorage
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = generate_uid()
    if isinstance(series_uid, dict):
        series_uid = series_uid.setdefault(str(original.get("SeriesInstanceUID", "")) or source, generate_uid())
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    image_type = list(original.get("ImageType", []) or [])
    dataset.ImageType = ["DERIVED", "SECONDARY"] + [str(value) for value in image_type[2:]]
    dataset.SeriesDescription = series_description[:64]
    dataset.DerivationDescription = derivation_description[:1024]
    if "SOPInstanceUID" in original:
        reference = pydicom.Dataset()
        reference.ReferencedSOPClassUID = original.get("SOPClassUID", sop_class)
        reference.ReferencedSOPInstanceUID = original.SOPInstanceUID
        dataset.SourceImageSequence = [reference]
    now = datetime.datetime.now()
    dataset.InstanceCreationDate = dataset.ContentDate = now.strftime("%Y%m%d")
    dataset.InstanceCreationTime = dataset.ContentTime = now.strftime("%H%M%S")


def _save_dicom(dataset, path: str) -> None:
    """Explicit VR Little Endian with its file meta, written atomically."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    atomic_write_bytes(path, buffer.getvalue())


def _dicom_frame(path: str, image: np.ndarray) -> np.ndarray:
    """A float [0, 1] ``[H, W, 1|3]`` frame for DICOM, or ValueError naming ``path``."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[:, :, np.newaxis]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"cannot write '{path}': frames must be [H, W], [H, W, 1] or [H, W, 3], got {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"cannot write '{path}': image contains NaN or infinite values")
    return np.clip(image, 0.0, 1.0)
