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
other float or signed data are scaled by their own range. Anything that cannot be decoded raises
`UnreadableImageError` (an `InputError`) naming the file and the reason.

Writing (`write_image`, `write_frames`, `write_derived_dicom`) quantises [0, 1] floats to 8 or 16
bits (16 for PNG and TIFF only, float32 TIFF with ``bit_depth=32``; DICOM at the source's stored
bit depth) and writes atomically, so a crash never leaves half a file.
"""

from __future__ import annotations

import concurrent.futures
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
    frames: frames (TIFF pages, DICOM frames, GIF frames) the file holds, whether or not all were
      read (`read_image` reads the first, `read_frames` every one of TIFF and DICOM).
    """

    bit_depth: int
    dtype: str
    channels: int
    format: str
    frames: int = 1


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
    frames, info = _read(path, channels, all_frames=False)
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
    frames, info = _read(path, channels, all_frames=True)
    if len(frames) < info.frames:
        _warn_first_frame_only(path, info)
    return frames, info


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


def _read(path: str, channels: Optional[int], all_frames: bool) -> Tuple[List[np.ndarray], ImageInfo]:
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
        images = _to_unit_range(path, samples, decoded.bit_depth)
    except UnreadableImageError:
        raise
    except Exception as error:  # every decoder has its own error types; all mean "unreadable"
        raise UnreadableImageError(path, _describe(error)) from error
    info = ImageInfo(
        bit_depth=8 if decoded.bit_depth <= 8 else 16,
        dtype=decoded.source_dtype or str(decoded.frames[0].dtype),
        channels=images[0].shape[-1],
        format=decoded.format,
        frames=max(decoded.total_frames, len(images)),
    )
    if len({image.shape[-1] for image in images}) > 1:  # e.g. a gray page in an RGB stack
        images = [convert_channels(image, info.channels) for image in images]
    return [convert_channels(image, channels) for image in images], info


class _Decoded(NamedTuple):
    """What a decoder returns: raw samples and how to interpret them."""

    frames: List[np.ndarray]  # each [H, W] or [H, W, C] in the file's own dtype (DICOM: float in [0, 1])
    bit_depth: int  # significant bits per sample (8, 12, 16, 32 for float)
    format: str
    source_dtype: Optional[str] = None  # when samples were converted already (DICOM)
    total_frames: int = 1  # frames in the file (more than len(frames) when only the first was read)


def _describe(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def _decode_with_pillow(path: str, all_frames: bool = False) -> _Decoded:
    """PNG, JPEG, BMP, GIF (and the TIFF fallback). Returns raw samples, bit depth, format.

    The first frame, or with ``all_frames`` every frame of a multi-page TIFF (GIF animations
    always give their first frame; ``total_frames`` tells how many they hold).
    """
    from PIL import Image

    if _is_16_bit_colour_png(path):
        return _Decoded([_decode_png_16_bit_colour(path)], 16, "png")
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # palette-transparency and EXIF chatter
        with Image.open(path) as handle:
            file_format = (handle.format or "unknown").lower()
            total = int(getattr(handle, "n_frames", 1) or 1)
            wanted = total if all_frames and file_format == "tiff" else 1
            for index in range(wanted):
                if index:
                    handle.seek(index)
                handle.load()  # decodes everything: raises on truncated or corrupt data
                frames.append(np.asarray(_pillow_to_plain_mode(handle)))
    frames = [
        frame.astype(frame.dtype.newbyteorder("=")) if frame.dtype.byteorder not in ("=", "|") else frame
        for frame in frames
    ]
    bit_depth = 8 if all(frame.dtype == np.uint8 for frame in frames) else 16
    return _Decoded(frames, bit_depth, file_format, total_frames=total)


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


def _decode_tiff(path: str, all_frames: bool = False) -> _Decoded:
    """The first page (or every page) of a TIFF with tifffile; Pillow for compressions tifffile
    cannot decode here. Each page is decoded on its own (photometric, palette, planar layout)."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tiff:
            if not tiff.pages:
                raise UnreadableImageError(path, "TIFF has no pages")
            total = len(tiff.pages)
            pages = list(tiff.pages) if all_frames else [tiff.pages.first]
            frames, bits = [], []
            for page in pages:
                samples, bits_per_sample = _tiff_page_samples(page)
                frames.append(samples)
                bits.append(bits_per_sample)
    except (KeyError, ValueError) as error:  # the error type differs between tifffile versions
        if "imagecodecs" not in str(error):
            raise
        # LZW/PackBits/JPEG-in-TIFF need the optional imagecodecs package; Pillow reads most.
        logger.debug("tifffile cannot decode %s (%s); trying Pillow", path, error)
        return _decode_with_pillow(path, all_frames)._replace(format="tiff")
    return _Decoded(frames, max(bits), "tiff", total_frames=total)


def _tiff_page_samples(page) -> Tuple[np.ndarray, int]:
    """One TIFF page's samples (``[H, W]`` or ``[H, W, C]``) and bits per sample."""
    import tifffile

    samples = page.asarray()
    bits_per_sample = page.bitspersample
    if page.axes.startswith("S") and samples.ndim == 3:  # planar configuration: samples first
        samples = np.moveaxis(samples, 0, -1)
    if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
        samples = np.moveaxis(page.colormap[:, samples], 0, -1)  # colormap is [3, 2**bits] uint16
        bits_per_sample = 16
    if page.photometric == tifffile.PHOTOMETRIC.MINISWHITE and np.issubdtype(samples.dtype, np.integer):
        samples = np.iinfo(samples.dtype).max - samples
    return samples, int(bits_per_sample)


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


def _to_unit_range(path: str, frames: List[np.ndarray], bit_depth: int) -> List[np.ndarray]:
    """Scales raw frames to float32 [0, 1] by bit depth (integers) or data range (others).

    The range of float or signed data is that of all frames together (one stack, one scale).
    """
    dtypes = {frame.dtype for frame in frames}
    dtype = frames[0].dtype
    if len(dtypes) > 1:  # pages of different sample types (rare): a common float scale
        frames = [frame.astype(np.float64) for frame in frames]
        dtype = np.dtype(np.float64)
    if dtype == np.bool_:
        return [frame.astype(np.float32) for frame in frames]
    if np.issubdtype(dtype, np.unsignedinteger) and dtype.itemsize <= 2:
        # 9..15 significant bits in a 16-bit container (12-bit microscopy cameras) scale by 2**b-1
        significant = bit_depth if 8 < bit_depth < 16 and dtype == np.uint16 else 8 * dtype.itemsize
        if significant < 16 and max(int(frame.max()) for frame in frames) > 2**significant - 1:
            significant = 16  # the tag undersells the data: scale by the container, never clip
        return [frame.astype(np.float32) / np.float32(2**significant - 1) for frame in frames]
    for frame in frames:
        if not np.all(np.isfinite(frame)):
            raise UnreadableImageError(path, "image contains NaN or infinite values")
    low = min(float(frame.min()) for frame in frames)
    high = max(float(frame.max()) for frame in frames)
    if np.issubdtype(dtype, np.unsignedinteger) and high <= 65535:
        scale = lambda values: values / 65535.0  # noqa: E731  (e.g. Pillow mode "I" holding 16-bit data)
    elif not (low >= 0.0 and high <= 1.0):
        logger.debug("%s: %s data in [%g, %g] scaled by its own range", path, dtype, low, high)
        scale = (lambda values: (values - low) / (high - low)) if high > low else np.zeros_like  # noqa: E731
    else:
        scale = lambda values: values  # noqa: E731
    return [scale(frame.astype(np.float64)).astype(np.float32) for frame in frames]


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
def write_image(path: str, image: np.ndarray, bit_depth: int = 8) -> None:
    """Writes a float image in [0, 1] (``[H, W]`` or ``[H, W, 1|3]``) atomically.

    The format follows the extension (`WRITE_EXTENSIONS`). bit_depth 8 works everywhere; 16 needs
    PNG or TIFF; 32 writes a float32 TIFF. Values outside [0, 1] are clipped; NaN/Inf raise
    `ValueError`. Callers make sure ``path`` is not an input (`check_output_location`).
    """
    write_frames(path, [image], bit_depth=bit_depth)


def write_frames(path: str, frames: Sequence[np.ndarray], bit_depth: int = 8) -> None:
    """Writes float frames in [0, 1] atomically: a multi-page TIFF, or one frame in any format.

    frames: ``[H, W]`` / ``[H, W, 1|3]`` arrays (a ``[F, H, W, C]`` array works too); TIFF pages
      may differ in size. Every page gets the same sample type (``bit_depth`` as in `write_image`:
      8 -> uint8, 16 -> uint16, 32 -> float32), zlib-compressed. Formats other than TIFF hold one
      frame only (`ValueError` for more).
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
    if len(frames) == 0:
        raise ValueError(f"cannot write '{path}': no frames given")
    if len(frames) > 1 and extension not in _TIFF_FORMATS:
        raise ValueError(f"cannot write {len(frames)} frames to '{path}': only TIFF holds several")
    samples = [_quantise(path, frame, bit_depth) for frame in frames]
    atomic_write_bytes(path, _encode(path, extension, samples))


def _quantise(path: str, image: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] ``[H, W(, 1|3)]`` to uint8 / uint16 / float32 ``[H, W]`` or ``[H, W, 3]``."""
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
        return image
    maximum = 2**bit_depth - 1
    return np.round(image * maximum).astype(np.uint8 if bit_depth == 8 else np.uint16)


def _encode(path: str, extension: str, frames: List[np.ndarray]) -> bytes:
    if extension in _TIFF_FORMATS:
        import tifffile

        buffer = io.BytesIO()
        # zlib (deflate) is built in and read by every TIFF reader, unlike LZW here.
        if len({frame.shape for frame in frames}) == 1:
            # One series of F pages: what ImageJ/Fiji and tifffile read back as one [F, H, W(, 3)] stack.
            stack = frames[0] if len(frames) == 1 else np.stack(frames)
            photometric = "rgb" if frames[0].ndim == 3 else "minisblack"
            tifffile.imwrite(buffer, stack, photometric=photometric, compression="zlib")
        else:
            with tifffile.TiffWriter(buffer) as writer:
                for frame in frames:
                    writer.write(frame, photometric="rgb" if frame.ndim == 3 else "minisblack", compression="zlib")
        return buffer.getvalue()
    import cv2

    (samples,) = frames
    if samples.ndim == 3:
        samples = np.ascontiguousarray(samples[..., ::-1])  # OpenCV expects BGR
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if extension in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(extension, samples, params)
    if not ok:
        raise OSError(f"could not encode '{path}' as {extension}")
    return encoded.tobytes()


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
