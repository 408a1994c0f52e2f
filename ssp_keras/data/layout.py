"""How a file's samples are laid out: orientation, colour model and alpha.

Decoders (`ssp_keras.data.decoding`, `ssp_keras.data.dicom`) hand over samples as the file stores
them; this module makes them what a viewer shows: turned by the EXIF / TIFF orientation tag
(`apply_orientation`), CMYK converted to RGB (`cmyk_to_rgb`), and an alpha channel split off the
colour (`split_alpha`) so it can be passed through untouched while the colour is enhanced.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

#: The EXIF / TIFF Orientation tag.
ORIENTATION_TAG = 0x0112


def apply_orientation(samples: np.ndarray, orientation: Optional[int]) -> np.ndarray:
    """``samples`` ``[H, W(, C)]`` turned the way the Orientation tag (1..8) says it is displayed.

    The transposes of Pillow's ``ImageOps.exif_transpose``: 2 mirrors left-right, 3 turns 180
    degrees, 4 mirrors top-bottom, 5 transposes, 6 turns 90 degrees clockwise, 7 transverses,
    8 turns 90 degrees anticlockwise; 1, None or anything else leaves the samples as they are.
    """
    if orientation == 2:
        return samples[:, ::-1]
    if orientation == 3:
        return samples[::-1, ::-1]
    if orientation == 4:
        return samples[::-1]
    if orientation == 5:
        return np.swapaxes(samples, 0, 1)
    if orientation == 6:
        return np.swapaxes(samples, 0, 1)[:, ::-1]
    if orientation == 7:
        return np.swapaxes(samples, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.swapaxes(samples, 0, 1)[::-1]
    return samples


def oriented_size(height: int, width: int, orientation: Optional[int]) -> Tuple[int, int]:
    """``(height, width)`` as displayed: swapped by the orientations that turn by 90 degrees (5-8)."""
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def cmyk_to_rgb(samples: np.ndarray) -> np.ndarray:
    """CMYK samples ``[H, W, 4]`` (any further channels kept after them) as RGB ``[H, W, 3]`` (+ those).

    ``R = (1 - C)(1 - K)`` etc. on the samples' own scale (the maximum of an integer type, or 1 for
    float), so the result has the input's type and range.
    """
    maximum = float(np.iinfo(samples.dtype).max) if np.issubdtype(samples.dtype, np.integer) else 1.0
    ink = samples[..., :4].astype(np.float64) / maximum
    rgb = (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:4]) * maximum
    if np.issubdtype(samples.dtype, np.integer):
        rgb = np.round(rgb)
    return np.concatenate([rgb.astype(samples.dtype), samples[..., 4:]], axis=-1)


def split_alpha(samples: np.ndarray) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """``(colour [H, W, 1|3], alpha [H, W, 1] or None)`` of samples ``[H, W, 1..4]``: gray + alpha
    has 2 channels, RGBA 4."""
    if samples.shape[-1] in (2, 4):
        return samples[..., :-1], samples[..., -1:]
    return samples, None


def has_gray_content(image: np.ndarray) -> bool:
    """Whether an ``[H, W, 1|3]`` image holds no colour: one channel, or three equal ones (a gray
    image stored as RGB, as many microscopy JPEGs are)."""
    return image.shape[-1] == 1 or bool(
        np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
    )
