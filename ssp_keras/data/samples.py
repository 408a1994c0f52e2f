"""How a file's sample values map to the library's [0, 1] floats, and back.

A `SampleFormat` is a file's sample type and the two values that read as 0 and 1: ``uint8`` 0..255,
``uint16`` 0..65535, a 12-bit camera's ``uint16`` 0..4095, float data already in [0, 1], or -- for
float, signed and 32-bit data outside [0, 1] -- the data's own range, the same for every frame of a
stack. `sample_format_of` finds it when a file is read (`ssp_keras.data.reading`); `SampleFormat.to_unit`
scales samples into [0, 1]; `SampleFormat.from_unit` turns results back into samples of the same type
and range, so an enhanced file keeps its input's type: 8 and 16 bits, other integer types in their own
range, float as float. `output_sample_format` says what a given output format can hold.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import List, Sequence

import numpy as np

from ssp_keras.data.formats import extension_of

logger = logging.getLogger(__name__)

#: Sample types PNG can hold (TIFF: every numeric type; the others 8 bits; see `can_hold`).
_PNG_TYPES = ("uint8", "uint16")
#: Formats written with 16 bits when the input had more than 8 and its own type does not fit.
SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff")


@dataclasses.dataclass(frozen=True)
class SampleFormat:
    """A sample type and the values ``low`` and ``high`` that read as 0.0 and 1.0."""

    dtype: str
    low: float
    high: float

    @classmethod
    def of_bit_depth(cls, bit_depth: int) -> "SampleFormat":
        """8 -> uint8 0..255, 16 -> uint16 0..65535, 32 -> float32 0..1 (the bit depths of `write_image`)."""
        if bit_depth == 32:
            return cls("float32", 0.0, 1.0)
        if bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8, 16 or 32, got {bit_depth!r}")
        return cls(f"uint{bit_depth}", 0.0, float(2**bit_depth - 1))

    @property
    def is_integer(self) -> bool:
        return np.issubdtype(np.dtype(self.dtype), np.integer)

    def to_unit(self, samples: np.ndarray) -> np.ndarray:
        """float32 in [0, 1] (a constant image, whose range is empty, reads as 0)."""
        if self.dtype == "bool":
            return samples.astype(np.float32)
        if self.high <= self.low:
            return np.zeros(samples.shape, np.float32)
        if self.low == 0.0 and np.dtype(self.dtype).itemsize <= 2 and self.is_integer:
            unit = samples.astype(np.float32)  # the common case, in float32, divided in place (memory)
            unit /= np.float32(self.high)
            return unit
        return ((samples.astype(np.float64) - self.low) / (self.high - self.low)).astype(np.float32)

    def from_unit(self, image: np.ndarray) -> np.ndarray:
        """``image`` (values in [0, 1], clipped) as samples of this type in [low, high] (integers rounded).

        Converted a band of rows at a time, so the float temporaries are a band's, not the image's
        (a 14000x14000 result would otherwise need several copies of itself to be written).
        """
        image = np.atleast_1d(np.asarray(image))
        samples = np.empty(image.shape, self.dtype)
        rows = max(1, _BAND_SAMPLES // max(1, image[0].size))
        for top in range(0, len(image), rows):
            samples[top:top + rows] = self._from_unit_values(image[top:top + rows])
        return samples

    def _from_unit_values(self, image: np.ndarray) -> np.ndarray:
        image = np.clip(np.asarray(image, dtype=np.float64 if self.dtype == "float64" else np.float32), 0.0, 1.0)
        if self.dtype in ("float32", "float64") and (self.low, self.high) == (0.0, 1.0):
            return image
        if self.low == 0.0 and self.dtype in ("uint8", "uint16"):  # in float32, as the serving signatures do
            return np.round(image * np.float32(self.high))
        values = self.low + image.astype(np.float64) * (self.high - self.low)
        if self.is_integer:
            values = np.clip(np.round(values), self.low, self.high)
        return values


#: Samples converted at a time by `SampleFormat.from_unit` (a band of rows: 32 MB of float64).
_BAND_SAMPLES = 2**22


def sample_format_of(path: str, frames: Sequence[np.ndarray], bit_depth: int) -> SampleFormat:
    """The `SampleFormat` of raw decoded ``frames`` (one stack: one format for all its frames).

    Unsigned 8/16-bit data scale by their bit depth (``bit_depth`` 9..15 in a 16-bit container:
    12-bit cameras, unless a value exceeds it); boolean data are 0/1; other data are checked to be
    finite and, unless already in [0, 1], scale by the range of the whole stack (unsigned data up
    to 65535 by 0..65535). Raises ``ValueError`` for NaN or Inf samples.
    """
    dtype = np.dtype(frames[0].dtype)
    if dtype == np.bool_:
        return SampleFormat("bool", 0.0, 1.0)
    if np.issubdtype(dtype, np.unsignedinteger) and dtype.itemsize <= 2:
        significant = bit_depth if 8 < bit_depth < 16 and dtype == np.uint16 else 8 * dtype.itemsize
        if significant < 16 and max(int(frame.max()) for frame in frames) > 2**significant - 1:
            significant = 16  # the tag undersells the data: scale by the container, never clip
        return SampleFormat(dtype.name, 0.0, float(2**significant - 1))
    for frame in frames:
        if not np.all(np.isfinite(frame)):
            raise ValueError("image contains NaN or infinite values")
    low = min(float(frame.min()) for frame in frames)
    high = max(float(frame.max()) for frame in frames)
    if np.issubdtype(dtype, np.unsignedinteger) and high <= 65535:
        return SampleFormat(dtype.name, 0.0, 65535.0)  # e.g. Pillow mode "I" holding 16-bit data
    if low >= 0.0 and high <= 1.0 and np.issubdtype(dtype, np.floating):
        return SampleFormat(dtype.name, 0.0, 1.0)
    logger.debug("%s: %s data in [%g, %g] scaled by its own range", path, dtype, low, high)
    return SampleFormat(dtype.name, low, high)


def frames_to_unit(path: str, frames: List[np.ndarray], bit_depth: int):
    """``(float32 frames in [0, 1], SampleFormat)`` of raw frames; frames of different sample types
    (rare) share one float64 scale."""
    if len({frame.dtype for frame in frames}) > 1:
        frames = [frame.astype(np.float64) for frame in frames]
    sample_format = sample_format_of(path, frames, bit_depth)
    return [sample_format.to_unit(frame) for frame in frames], sample_format


def can_hold(extension: str, dtype: str) -> bool:
    """Whether a file of ``extension`` (``.tif``, ``.png``...) can store samples of ``dtype``."""
    extension = extension.lower()
    if dtype == "bool":
        return False
    if extension in (".tif", ".tiff"):
        return np.issubdtype(np.dtype(dtype), np.number) and np.dtype(dtype).itemsize <= 8
    if extension == ".png":
        return dtype in _PNG_TYPES
    return dtype == "uint8"


def output_bit_depth(destination: str, source_bit_depth: int) -> int:
    """16 when the source had more than 8 bits and the output format can hold it, else 8."""
    extension = extension_of(destination)
    return 16 if source_bit_depth > 8 and extension in SIXTEEN_BIT_EXTENSIONS else 8


def output_sample_format(destination: str, source: SampleFormat, source_bit_depth: int) -> SampleFormat:
    """What an output written to ``destination`` stores: the source's own type and range when that
    format can hold it, else `output_bit_depth`'s 16 or 8 bits."""
    if can_hold(extension_of(destination), source.dtype):
        return source
    return SampleFormat.of_bit_depth(output_bit_depth(destination, source_bit_depth))
