"""Writing float images in [0, 1] as PNG, JPEG, BMP and TIFF files, atomically.

`write_image` and `write_frames` turn [0, 1] floats into 8 or 16 bits (16 for PNG and TIFF only,
float32 TIFF with ``bit_depth=32``), or into a given `SampleFormat` (any numeric type in TIFF),
with an optional alpha channel; several frames make a multi-page TIFF. DICOM results are written by
`ssp_keras.data.dicom.write_derived_dicom`. Every write is atomic, so a crash never leaves half a
file.
"""

from __future__ import annotations

import io
from typing import List, Optional, Sequence

import numpy as np

from ssp_keras.data.formats import PNG_SIGNATURE, TIFF_FORMATS, WRITE_EXTENSIONS, extension_of
from ssp_keras.data.samples import SampleFormat
from ssp_keras.errors import InputError
from ssp_keras.utils.files import atomic_write_bytes


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

    extension = extension_of(path)
    if extension not in WRITE_EXTENSIONS:
        raise InputError(
            f"cannot write '{path}': unsupported extension {extension or '(none)'}; "
            f"use one of {', '.join(WRITE_EXTENSIONS)}"
        )
    if sample_format is None:
        allowed = (8, 16, 32) if extension in TIFF_FORMATS else (8, 16) if extension == ".png" else (8,)
        if bit_depth not in allowed:
            raise ValueError(f"cannot write '{path}' with bit_depth={bit_depth}: {extension} allows {allowed}")
        sample_format = SampleFormat.of_bit_depth(bit_depth)
    elif not can_hold(extension, sample_format.dtype):
        raise ValueError(f"cannot write '{path}' with {sample_format.dtype} samples: {extension} cannot hold them")
    if len(frames) == 0:
        raise ValueError(f"cannot write '{path}': no frames given")
    if len(frames) > 1 and extension not in TIFF_FORMATS:
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
    if extension in TIFF_FORMATS:
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
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
