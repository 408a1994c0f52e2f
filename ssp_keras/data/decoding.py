"""Decoders of PNG, JPEG, BMP, GIF and TIFF files into raw samples (DICOM: `ssp_keras.data.dicom`).

* PNG (8- and 16-bit, gray, RGB, palette), JPEG, BMP and GIF (first frame) through Pillow, with
  OpenCV for 16-bit colour PNG (Pillow reduces it to 8 bits).
* TIFF through ``tifffile`` (8/16-bit, other integer types, float; every page of a multi-page
  stack), with Pillow as the fallback for compressions that need the optional ``imagecodecs``
  package (LZW, PackBits).

A decoder returns a `Decoded`: samples in the file's own dtype, turned as the EXIF / TIFF
orientation tag says, and how to interpret them; `ssp_keras.data.reading` scales them to [0, 1].
Images of any size are decoded (Pillow's decompression-bomb limit does not apply to the files a
user names); one too large for the memory available is refused with a reason (`require_memory`).
Anything that cannot be decoded raises `UnreadableImageError` (an `InputError`) naming the file.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from ssp_keras.data.formats import PNG_SIGNATURE
from ssp_keras.data.layout import ORIENTATION_TAG, apply_orientation, cmyk_to_rgb
from ssp_keras.errors import InputError

logger = logging.getLogger(__name__)


class UnreadableImageError(InputError):
    """A file that is not a decodable image. ``path`` and ``reason`` are kept for reports."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read image '{path}': {reason}")
        self.path = path
        self.reason = reason


class Decoded(NamedTuple):
    """What a decoder returns: raw samples and how to interpret them."""

    frames: List[np.ndarray]  # each [H, W] or [H, W, C] in the file's own dtype (DICOM: float in [0, 1]), alpha last
    bit_depth: int  # significant bits per sample (8, 12, 16, 32 for float)
    format: str
    source_dtype: Optional[str] = None  # when samples were converted already (DICOM)
    total_frames: int = 1  # frames in the file (more than len(frames) when only the first was read)
    colour: str = ""  # the file's colour model when it is not plain gray or RGB (palette, CMYK, ...)


def describe_error(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def decode_with_pillow(path: str, all_frames: bool = False) -> Decoded:
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
    with warnings.catch_warnings(), without_pillow_pixel_limit():
        warnings.simplefilter("ignore")  # palette-transparency and EXIF chatter
        with Image.open(path) as handle:
            file_format = (handle.format or "unknown").lower()
            total = int(getattr(handle, "n_frames", 1) or 1)
            wanted = total if all_frames and file_format == "tiff" else 1
            bands = len(handle.getbands())
            require_memory(path, handle.height * handle.width * max(bands, 1) * wanted, handle.height, handle.width)
            orientation = pillow_orientation(handle)
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
    return Decoded(frames, bit_depth, file_format, total_frames=total, colour=colour)


#: Pillow modes whose colour model is neither gray nor RGB, by the name messages use.
_PILLOW_COLOUR_MODELS = {"P": "palette", "PA": "palette", "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "LAB",
                         "HSV": "HSV"}
_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def without_pillow_pixel_limit():
    """Pillow refuses images over ``Image.MAX_IMAGE_PIXELS`` (89 Mpx) as possible decompression
    bombs; a file the user names is read whatever its size (`require_memory` guards the memory)."""
    from PIL import Image

    with _PILLOW_LIMIT_LOCK:
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def pillow_orientation(image) -> Optional[int]:
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
        and header.startswith(PNG_SIGNATURE)
        and header[12:16] == b"IHDR"
        and header[24] == 16
        and header[25] in (2, 4, 6)
    )


def _decode_png_16_bit(path: str) -> Decoded:
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
    return Decoded([decoded], 16, "png")


def decode_tiff(path: str, all_frames: bool = False) -> Decoded:
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
        return decode_with_pillow(path, all_frames)._replace(format="tiff")
    colour = "/".join(sorted(colours - {""}))
    return Decoded(frames, max(bits), "tiff", total_frames=total, colour=colour)


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
