"""Reading and writing images in every format the project accepts.

Inside the library an image is a float32 array ``[H, W, C]`` with values in [0, 1] (see
CONTRIBUTING.md). This module is the only place that converts between that and files on disk:

* PNG (8- and 16-bit, gray, RGB, palette), JPEG, BMP and GIF (first frame) through Pillow, with
  OpenCV for 16-bit colour PNG (Pillow reduces it to 8 bits).
* TIFF through ``tifffile`` (8/16-bit, other integer types, float; first page), with Pillow as
  the fallback for compressions that need the optional ``imagecodecs`` package (LZW, PackBits).
* DICOM through ``pydicom`` (modality LUT / rescale slope and intercept applied, scaled by the
  stored bit depth, MONOCHROME1 inverted; first frame of a multi-frame file).

Integer data are scaled by their bit depth, so a 16-bit value of 65535 reads as 1.0 and a 12-bit
DICOM value of 4095 reads as 1.0; nothing is clipped at 255. Float data already in [0, 1] are kept,
other float or signed data are scaled by their own range. Anything that cannot be decoded raises
`UnreadableImageError` (an `InputError`) naming the file and the reason.

Writing (`write_image`) quantises [0, 1] floats to 8 or 16 bits (16 for PNG and TIFF only, float32
TIFF with ``bit_depth=32``) and writes atomically, so a crash never leaves half a file.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import logging
import os
import warnings
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

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

    bit_depth: 8 or 16, the precision to write results back with (16 for anything finer than
      8 bits: 12/16-bit integers, DICOM, float TIFF).
    dtype: the numpy dtype of the decoded samples (``uint8``, ``uint16``, ``float32``, ...).
    channels: channels in the file after dropping alpha (1 or 3).
    format: ``png``, ``jpeg``, ``bmp``, ``gif``, ``tiff`` or ``dicom``.
    """

    bit_depth: int
    dtype: str
    channels: int
    format: str


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
    """Like `read_image`, also returning an `ImageInfo` (source bit depth, dtype, format)."""
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
            decoded = _decode_tiff(path)
        elif extension in _DICOM_FORMATS:
            decoded = _decode_dicom(path)
        else:
            decoded = _decode_with_pillow(path)
        samples = _to_hwc(path, decoded.samples)
        image = _to_unit_range(path, samples, decoded.bit_depth)
    except UnreadableImageError:
        raise
    except Exception as error:  # every decoder has its own error types; all mean "unreadable"
        raise UnreadableImageError(path, _describe(error)) from error
    info = ImageInfo(
        bit_depth=8 if decoded.bit_depth <= 8 else 16,
        dtype=decoded.source_dtype or str(decoded.samples.dtype),
        channels=image.shape[-1],
        format=decoded.format,
    )
    return convert_channels(image, channels), info


class _Decoded(NamedTuple):
    """What a decoder returns: raw samples and how to interpret them."""

    samples: np.ndarray  # [H, W] or [H, W, C] in the file's own dtype (DICOM: float in [0, 1])
    bit_depth: int  # significant bits per sample (8, 12, 16, 32 for float)
    format: str
    source_dtype: Optional[str] = None  # when samples were converted already (DICOM)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _decode_with_pillow(path: str) -> _Decoded:
    """PNG, JPEG, BMP, GIF (and the TIFF fallback). Returns raw samples, bit depth, format."""
    from PIL import Image

    if _is_16_bit_colour_png(path):
        return _Decoded(_decode_png_16_bit_colour(path), 16, "png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # palette-transparency and EXIF chatter
        with Image.open(path) as handle:
            handle.load()  # decodes everything: raises on truncated or corrupt data
            file_format = (handle.format or "unknown").lower()
            image = _pillow_to_plain_mode(handle)
            samples = np.asarray(image)
    if samples.dtype.byteorder not in ("=", "|"):
        samples = samples.astype(samples.dtype.newbyteorder("="))
    bit_depth = 8 if samples.dtype == np.uint8 else 16
    return _Decoded(samples, bit_depth, file_format)


def _pillow_to_plain_mode(image):
    """Converts Pillow's many modes to L, RGB(A), I;16, I or F so numpy sees plain samples."""
    mode = image.mode
    if mode in ("L", "RGB", "RGBA", "I", "F"):
        return image
    if mode.startswith("I;16"):
        return image if mode == "I;16" else image.convert("I")
    if mode in ("1", "LA", "La"):
        return image.convert("L")
    # P, PA, CMYK, YCbCr, LAB, HSV, RGBa, ...: via RGBA so palette transparency is not lost
    return image.convert("RGBA")


def _is_16_bit_colour_png(path: str) -> bool:
    """Reads the PNG header: 16-bit RGB(A) is the one PNG kind Pillow cannot keep at 16 bits."""
    with open(path, "rb") as stream:
        header = stream.read(26)
    return (
        len(header) == 26
        and header.startswith(_PNG_SIGNATURE)
        and header[12:16] == b"IHDR"
        and header[24] == 16
        and header[25] in (2, 6)
    )


def _decode_png_16_bit_colour(path: str) -> np.ndarray:
    import cv2

    with open(path, "rb") as stream:
        data = np.frombuffer(stream.read(), dtype=np.uint8)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise UnreadableImageError(path, "corrupt or truncated 16-bit PNG")
    if decoded.ndim == 3:  # OpenCV orders channels BGR(A)
        decoded = decoded[..., [2, 1, 0]]
    return decoded


def _decode_tiff(path: str) -> _Decoded:
    """First page of a TIFF with tifffile; Pillow for compressions tifffile cannot decode here."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.pages:
                raise UnreadableImageError(path, "TIFF has no pages")
            page = tiff.pages.first
            samples = page.asarray()
            axes = page.axes
            photometric = page.photometric
            bits_per_sample = page.bitspersample
            colormap = page.colormap
    except (KeyError, ValueError) as error:  # the error type differs between tifffile versions
        if "imagecodecs" not in str(error):
            raise
        # LZW/PackBits/JPEG-in-TIFF need the optional imagecodecs package; Pillow reads most.
        logger.debug("tifffile cannot decode %s (%s); trying Pillow", path, error)
        return _decode_with_pillow(path)._replace(format="tiff")
    if axes.startswith("S") and samples.ndim == 3:  # planar configuration: samples first
        samples = np.moveaxis(samples, 0, -1)
    if photometric == tifffile.PHOTOMETRIC.PALETTE and colormap is not None:
        samples = np.moveaxis(colormap[:, samples], 0, -1)  # colormap is [3, 2**bits] uint16
        bits_per_sample = 16
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE and np.issubdtype(samples.dtype, np.integer):
        samples = np.iinfo(samples.dtype).max - samples
    return _Decoded(samples, int(bits_per_sample), "tiff")


def _decode_dicom(path: str) -> _Decoded:
    """First frame of a DICOM file, modality LUT applied, as float64 in [0, 1].

    Scaled by the range the stored bits can hold (BitsStored, signed or not, mapped through the
    rescale slope/intercept), not by the frame's own min/max, so brightness is comparable between
    files. MONOCHROME1 (white = 0) is inverted.
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(path, force=True)
    if "PixelData" not in dataset:
        raise UnreadableImageError(path, "DICOM file has no pixel data")
    if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        dataset.pixel_array_options(index=0)  # decode only the first frame, not the whole volume
    pixels = dataset.pixel_array
    samples_per_pixel = int(dataset.get("SamplesPerPixel", 1))
    bits_stored = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    signed = int(dataset.get("PixelRepresentation", 0)) == 1
    if samples_per_pixel == 1:
        stored_low = -(2 ** (bits_stored - 1)) if signed else 0
        stored_high = 2 ** (bits_stored - 1) - 1 if signed else 2**bits_stored - 1
        values = apply_modality_lut(pixels, dataset).astype(np.float64)
        if bits_stored <= 16:  # a LUT may be non-monotonic: map every stored value
            stored_range = np.arange(stored_low, stored_high + 1)
        else:
            stored_range = np.array([stored_low, stored_high])
        mapped = apply_modality_lut(stored_range, dataset)
        low, high = float(np.min(mapped)), float(np.max(mapped))
        image = (values - low) / max(high - low, 1e-12)
        if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
            image = 1.0 - image
    else:  # colour DICOM: pydicom already converted YBR to RGB
        image = pixels.astype(np.float64) / (2**bits_stored - 1)
    return _Decoded(np.clip(image, 0.0, 1.0), bits_stored, "dicom", str(pixels.dtype))


def _to_hwc(path: str, samples: np.ndarray) -> np.ndarray:
    """[H, W] or [H, W, C] with C in 1..4 becomes [H, W, 1 or 3] (alpha dropped)."""
    samples = np.asarray(samples)
    while samples.ndim > 3 and samples.shape[0] == 1:  # leading singleton axes (e.g. TIFF Z=1)
        samples = samples[0]
    if samples.ndim == 2:
        samples = samples[:, :, np.newaxis]
    if samples.ndim != 3 or samples.shape[-1] not in (1, 2, 3, 4):
        raise UnreadableImageError(path, f"unsupported sample layout {samples.shape}")
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise UnreadableImageError(path, f"image has no pixels (shape {samples.shape})")
    if samples.shape[-1] == 2:  # gray + alpha
        samples = samples[..., :1]
    elif samples.shape[-1] == 4:  # RGBA
        samples = samples[..., :3]
    return samples


def _to_unit_range(path: str, samples: np.ndarray, bit_depth: int) -> np.ndarray:
    """Scales raw samples to float32 [0, 1] by bit depth (integers) or data range (others)."""
    dtype = samples.dtype
    if dtype == np.bool_:
        return samples.astype(np.float32)
    if np.issubdtype(dtype, np.unsignedinteger) and dtype.itemsize <= 2:
        # 9..15 significant bits in a 16-bit container (12-bit microscopy cameras) scale by 2**b-1
        significant = bit_depth if 8 < bit_depth < 16 and dtype == np.uint16 else 8 * dtype.itemsize
        if significant < 16 and int(samples.max()) > 2**significant - 1:
            significant = 16  # the tag undersells the data: scale by the container, never clip
        return samples.astype(np.float32) / np.float32(2**significant - 1)
    values = samples.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise UnreadableImageError(path, "image contains NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if np.issubdtype(dtype, np.unsignedinteger) and high <= 65535:
        values = values / 65535.0  # e.g. Pillow mode "I" holding 16-bit data
    elif not (low >= 0.0 and high <= 1.0):
        logger.debug("%s: %s data in [%g, %g] scaled by its own range", path, dtype, low, high)
        values = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return values.astype(np.float32)


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
                return int(page.imagelength), int(page.imagewidth), 1 if page.samplesperpixel < 3 else 3
        if extension in _DICOM_FORMATS:
            import pydicom

            dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
            spp = int(dataset.get("SamplesPerPixel", 1))
            return int(dataset.Rows), int(dataset.Columns), 1 if spp == 1 else 3
        if extension in _PIL_FORMATS:
            from PIL import Image

            with Image.open(path) as handle:
                gray = handle.mode in ("1", "L", "LA", "La", "I", "F") or handle.mode.startswith("I;16")
                return handle.height, handle.width, 1 if gray else 3
    except Exception:  # an odd header: decoding gives the answer or the proper error
        pass
    image = read_image(path)
    return image.shape[0], image.shape[1], image.shape[2]


# --------------------------------------------------------------------------------- scanning
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
    files: List[str] = []
    for source in sources:
        if not os.path.exists(source):  # a mistyped path is an error, not a file to skip
            raise InputError(f"image file or folder not found: '{source}'")
        files.extend(list_images(source) if os.path.isdir(source) else [source])

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
def write_image(path: str, image: np.ndarray, bit_depth: int = 8) -> None:
    """Writes a float image in [0, 1] (``[H, W]`` or ``[H, W, 1|3]``) atomically.

    The format follows the extension (`WRITE_EXTENSIONS`). bit_depth 8 works everywhere; 16 needs
    PNG or TIFF; 32 writes a float32 TIFF. Values outside [0, 1] are clipped; NaN/Inf raise
    `ValueError`. Callers make sure ``path`` is not an input (`check_output_location`).
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in WRITE_EXTENSIONS:
        raise InputError(
            f"cannot write '{path}': unsupported extension {extension or '(none)'}; "
            f"use one of {', '.join(WRITE_EXTENSIONS)}"
        )
    allowed = (8, 16, 32) if extension in _TIFF_FORMATS else (8, 16) if extension == ".png" else (8,)
    if bit_depth not in allowed:
        raise ValueError(f"cannot write '{path}' with bit_depth={bit_depth}: {extension} allows {allowed}")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(
            f"cannot write '{path}': image must be [H, W], [H, W, 1] or [H, W, 3], got {image.shape}"
        )
    if not np.all(np.isfinite(image)):
        raise ValueError(f"cannot write '{path}': image contains NaN or infinite values")
    image = np.clip(image, 0.0, 1.0)
    if bit_depth == 32:
        samples = image
    else:
        maximum = 2**bit_depth - 1
        samples = np.round(image * maximum).astype(np.uint8 if bit_depth == 8 else np.uint16)
    atomic_write_bytes(path, _encode(path, extension, samples))


def _encode(path: str, extension: str, samples: np.ndarray) -> bytes:
    if extension in _TIFF_FORMATS:
        import tifffile

        buffer = io.BytesIO()
        photometric = "rgb" if samples.ndim == 3 else "minisblack"
        # zlib (deflate) is built in and read by every TIFF reader, unlike LZW here.
        tifffile.imwrite(buffer, samples, photometric=photometric, compression="zlib")
        return buffer.getvalue()
    import cv2

    if samples.ndim == 3:
        samples = np.ascontiguousarray(samples[..., ::-1])  # OpenCV expects BGR
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if extension in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(extension, samples, params)
    if not ok:
        raise OSError(f"could not encode '{path}' as {extension}")
    return encoded.tobytes()
