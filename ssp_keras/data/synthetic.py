"""Synthetic nerve-fibre images with known degradations and known fibre masks.

A stand-in for corneal confocal microscopy (CCM) of the sub-basal nerve plexus, for tests and for a
demo that needs no download:

* HQ (`render_scene`): bright curvilinear fibres on a dark, finely textured background, evenly lit.
  A few long "main" nerves run roughly parallel (cubic Bezier paths across the frame, with a slow
  wiggle), some with thinner branches leaving at a small angle, plus a few faint short
  interconnecting fibres. Thickness and brightness vary along each fibre (beading).
* LQ (`degrade`): the same image times a smooth illumination field (radial vignetting around an
  off-centre point, times a linear gradient: the uneven illumination SSP-Net is meant to remove),
  then a mild Gaussian blur and multiplicative speckle noise.
* mask: the pixels the fibres were drawn on (before softening), boolean ``[H, W]``.

All arrays are float32 in [0, 1], ``[H, W, C]``. The same seed always gives the same images, and
image ``i`` of a set does not depend on how many images the set has.

Regenerate the bundled sample set with::

    python -m ssp_keras.data.synthetic --out data/synthetic --seed 0 --count 12 --test-count 4 \
        --size 128 --overwrite
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ssp_keras.errors import InputError

logger = logging.getLogger(__name__)

# Degradation defaults (the strength of the known LQ corruption). The generator is test and demo
# data, not a training setting, so these live here rather than in config.py.
DEFAULT_RAMP_STRENGTH = 0.6  # how dark the illumination field gets away from its bright spot
DEFAULT_BLUR_SIGMA = 1.0  # pixels, at 256x256 (scaled with the image size)
DEFAULT_NOISE = 0.06  # standard deviation of the multiplicative speckle
DEFAULT_SIZE = (256, 256)

SUBFOLDERS = ("trainA", "trainB", "testA", "testB", "masks")

SeedOrRng = Union[int, np.random.Generator, None]
Size = Union[int, Tuple[int, int]]

# Which random stream each kind of image comes from (so train and test scenes never coincide).
_STREAM_TRAIN_LQ, _STREAM_TRAIN_HQ, _STREAM_TEST = 1, 2, 3


# ----------------------------------------------------------------------------- public API
def generate_pair(
    rng: SeedOrRng = None,
    size: Size = DEFAULT_SIZE,
    channels: int = 1,
    ramp_strength: float = DEFAULT_RAMP_STRENGTH,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    noise: float = DEFAULT_NOISE,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: ``(lq, hq, mask)``.

    rng: a ``numpy.random.Generator`` or an integer seed.
    size: ``(height, width)`` or one int for a square.
    Returns lq and hq float32 ``[H, W, channels]`` in [0, 1] (hq evenly lit, lq = degraded hq),
    and mask bool ``[H, W]``, true on fibre pixels.
    """
    rng = _as_rng(rng)
    hq, mask = render_scene(rng, size, channels)
    lq = degrade(hq, rng, ramp_strength=ramp_strength, blur_sigma=blur_sigma, noise=noise)
    return lq, hq, mask


def render_scene(rng: SeedOrRng, size: Size = DEFAULT_SIZE, channels: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """The clean (HQ) image float32 ``[H, W, channels]`` and its fibre mask bool ``[H, W]``."""
    rng = _as_rng(rng)
    height, width = _as_size(size)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    scale = min(height, width) / 256.0  # drawing parameters are tuned at 256x256

    fibres = np.zeros((height, width), np.float32)
    for path, thickness, brightness in _fibre_paths(rng, height, width, scale):
        _draw_fibre(fibres, path, thickness, brightness, rng)
    mask = fibres > 0
    # soften the hard-edged drawing the way the microscope's point-spread function would
    fibres = cv2.GaussianBlur(fibres, (0, 0), sigmaX=max(0.6 * scale, 0.5))
    background = _background(rng, height, width, scale)
    image = background + fibres * (1.0 - background)  # fibres reach their own brightness
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return _with_channels(image, channels), mask


def render_training_crop(rng: SeedOrRng, size: int, channels: int = 1) -> np.ndarray:
    """A clean scene for paired training (``loss.synthetic_restoration``): float32 ``[size, size,
    channels]`` in [0, 1], a random ``size`` square of a scene rendered with a random side in
    ``[size, 2 size]``, so fibre widths and spacing vary by up to 2x as they do between microscopes."""
    rng = _as_rng(rng)
    side = int(rng.integers(size, 2 * size + 1))
    scene, _ = render_scene(rng, side, channels)
    top, left = (int(value) for value in rng.integers(0, side - size + 1, size=2))
    return np.ascontiguousarray(scene[top:top + size, left:left + size])


def degrade(
    hq: np.ndarray,
    rng: SeedOrRng,
    ramp_strength: float = DEFAULT_RAMP_STRENGTH,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    noise: float = DEFAULT_NOISE,
) -> np.ndarray:
    """The known LQ corruption of an image: uneven illumination, blur, speckle.

    hq: float ``[H, W]`` or ``[H, W, C]`` in [0, 1].
    ramp_strength: 0 (no illumination change) .. 1 (corners almost black); the field is a radial
      falloff around a random off-centre point times a linear gradient in a random direction,
      scaled so its brightest point is 1.
    blur_sigma: Gaussian blur in pixels at 256x256, scaled with the image (0 = none).
    noise: standard deviation of the multiplicative speckle ``x * (1 + noise * N(0, 1))``.
    Returns float32 of the same shape, in [0, 1].
    """
    rng = _as_rng(rng)
    image = np.asarray(hq, dtype=np.float32)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[:, :, np.newaxis]
    height, width = image.shape[:2]
    field = illumination_field(rng, (height, width), ramp_strength)
    degraded = image * field[:, :, np.newaxis]
    sigma = blur_sigma * min(height, width) / 256.0
    if sigma > 0:
        degraded = cv2.GaussianBlur(degraded, (0, 0), sigmaX=sigma)
        degraded = degraded.reshape(image.shape)  # OpenCV drops a trailing axis of size 1
    if noise > 0:
        speckle = rng.standard_normal((height, width, 1), dtype=np.float32)
        degraded = degraded * (1.0 + noise * speckle)
    degraded = np.clip(degraded, 0.0, 1.0).astype(np.float32)
    return degraded[:, :, 0] if squeeze else degraded


def illumination_field(rng: SeedOrRng, size: Size, ramp_strength: float = DEFAULT_RAMP_STRENGTH) -> np.ndarray:
    """A smooth multiplicative illumination field float32 ``[H, W]`` with maximum 1.

    Vignetting ``1 - a * r**2`` around a random point near the centre (r = distance over the
    half-diagonal), times a linear ramp ``1 + b * t`` along a random direction (t in [-1, 1]).
    """
    rng = _as_rng(rng)
    height, width = _as_size(size)
    if not 0 <= ramp_strength <= 1:
        raise ValueError(f"ramp_strength must be in [0, 1], got {ramp_strength!r}")
    rows = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, np.newaxis]
    cols = np.linspace(-1.0, 1.0, width, dtype=np.float32)[np.newaxis, :]
    centre_row, centre_col = rng.uniform(-0.3, 0.3, size=2)
    radius_squared = ((rows - centre_row) ** 2 + (cols - centre_col) ** 2) / 2.0
    vignette = 1.0 - ramp_strength * rng.uniform(0.7, 1.0) * np.minimum(radius_squared, 1.0)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    along = (np.cos(angle) * cols + np.sin(angle) * rows) / np.sqrt(2.0)
    gradient = 1.0 + ramp_strength * rng.uniform(0.2, 0.5) * along
    field = vignette * gradient
    field = np.maximum(field, 0.05 * field.max())
    return (field / field.max()).astype(np.float32)


def generate_dataset(
    folder: str,
    count: int,
    size: Size = DEFAULT_SIZE,
    seed: int = 0,
    unpaired: bool = True,
    test_count: int = 4,
    channels: int = 1,
    overwrite: bool = False,
    ramp_strength: float = DEFAULT_RAMP_STRENGTH,
    blur_sigma: float = DEFAULT_BLUR_SIGMA,
    noise: float = DEFAULT_NOISE,
) -> dict:
    """Writes a CORN-style synthetic set as 8-bit PNG, returns its description (also params.json).

    folder/trainA: ``count`` LQ images; folder/trainB: ``count`` HQ images, of *other* scenes when
    ``unpaired`` (of the same scenes, same names, otherwise); folder/testA and testB: ``test_count``
    LQ/HQ pairs of further scenes, same names; folder/masks: their fibre masks (0/255), same names.
    An existing non-empty set is only replaced with ``overwrite``. ``ramp_strength``, ``blur_sigma``
    and ``noise`` set the LQ corruption (`degrade`) of trainA and testA (e.g. blur and noise 0 for
    shading-only LQ scenes, when a training degradation model adds blur and noise itself).
    """
    if count < 1 or test_count < 0:
        raise ValueError(f"count must be >= 1 and test_count >= 0, got {count} and {test_count}")
    if not (blur_sigma >= 0 and noise >= 0):  # also refuses NaN
        raise ValueError(f"blur_sigma and noise must be >= 0, got {blur_sigma} and {noise}")
    height, width = _as_size(size)
    _prepare_folder(folder, overwrite)
    from ssp_keras.data.writing import write_image

    for index in range(count):
        lq_rng = _image_rng(seed, _STREAM_TRAIN_LQ, index)
        hq, _ = render_scene(lq_rng, (height, width), channels)
        lq = degrade(hq, lq_rng, ramp_strength=ramp_strength, blur_sigma=blur_sigma, noise=noise)
        write_image(os.path.join(folder, "trainA", f"syn_{index:04d}.png"), lq)
        if unpaired:
            hq, _ = render_scene(_image_rng(seed, _STREAM_TRAIN_HQ, index), (height, width), channels)
        write_image(os.path.join(folder, "trainB", f"syn_{index:04d}.png"), hq)
    for index in range(test_count):
        lq, hq, mask = generate_pair(
            _image_rng(seed, _STREAM_TEST, index), (height, width), channels,
            ramp_strength=ramp_strength, blur_sigma=blur_sigma, noise=noise,
        )
        name = f"test_{index:04d}.png"
        write_image(os.path.join(folder, "testA", name), lq)
        write_image(os.path.join(folder, "testB", name), hq)
        write_image(os.path.join(folder, "masks", name), mask.astype(np.float32))
    description = {
        "generator": "ssp_keras.data.synthetic",
        "seed": seed,
        "count": count,
        "test_count": test_count,
        "size": [height, width],
        "channels": channels,
        "unpaired": unpaired,
        "ramp_strength": ramp_strength,
        "blur_sigma": blur_sigma,
        "noise": noise,
    }
    from ssp_keras.utils.files import atomic_write_bytes

    atomic_write_bytes(
        os.path.join(folder, "params.json"), (json.dumps(description, indent=2) + "\n").encode("utf-8")
    )
    return description


# ----------------------------------------------------------------------------- scene parts
def _fibre_paths(rng: np.random.Generator, height: int, width: int, scale: float):
    """Yields ``(points [N, 2] as (x, y), thickness [N], brightness [N])`` for every fibre."""
    diagonal = float(np.hypot(height, width))
    centre = np.array([width / 2.0, height / 2.0])
    main_angle = rng.uniform(0.0, np.pi)  # sub-basal nerves run roughly parallel
    for _ in range(rng.integers(3, 8)):
        angle = main_angle + rng.normal(0.0, 0.15)
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        half_extent = 0.5 * (abs(normal[0]) * width + abs(normal[1]) * height)  # image, across
        offset = rng.uniform(-0.9, 0.9) * half_extent
        start = centre + normal * offset - direction * diagonal * 0.6
        end = centre + normal * offset + direction * diagonal * 0.6
        path = _bezier(start, end, normal, 0.12 * diagonal, rng, points=96)
        path = _wiggle(path, normal, rng, amplitude=3.0 * scale)
        thickness = rng.uniform(1.2, 3.2) * scale
        brightness = rng.uniform(0.55, 0.95)
        yield path, _varying(thickness, 0.3, len(path), rng), _varying(brightness, 0.2, len(path), rng)
        for _ in range(rng.integers(0, 3)):  # branches leave at a small angle, thinner and dimmer
            at = rng.integers(len(path) // 5, 4 * len(path) // 5)
            tangent = path[min(at + 1, len(path) - 1)] - path[max(at - 1, 0)]
            tangent /= np.linalg.norm(tangent) + 1e-9
            turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.7)
            branch_direction = _rotate(tangent, turn)
            length = rng.uniform(0.25, 0.6) * diagonal
            branch_end = path[at] + branch_direction * length
            branch_normal = np.array([-branch_direction[1], branch_direction[0]])
            branch = _bezier(path[at], branch_end, branch_normal, 0.08 * length, rng, points=48)
            branch = _wiggle(branch, branch_normal, rng, amplitude=2.0 * scale)
            yield (
                branch,
                _varying(thickness * rng.uniform(0.4, 0.7), 0.3, len(branch), rng),
                _varying(brightness * rng.uniform(0.55, 0.85), 0.25, len(branch), rng),
            )
    for _ in range(rng.integers(2, 7)):  # faint short interconnecting fibres at any angle
        start = rng.uniform([0, 0], [width, height])
        direction = _rotate(np.array([1.0, 0.0]), rng.uniform(0.0, 2.0 * np.pi))
        length = rng.uniform(0.15, 0.35) * diagonal
        normal = np.array([-direction[1], direction[0]])
        path = _bezier(start, start + direction * length, normal, 0.1 * length, rng, points=32)
        path = _wiggle(path, normal, rng, amplitude=1.5 * scale)
        thickness = _varying(1.0 * scale, 0.2, len(path), rng)
        yield path, thickness, _varying(rng.uniform(0.3, 0.5), 0.2, len(path), rng)


def _bezier(start, end, normal, bend: float, rng: np.random.Generator, points: int) -> np.ndarray:
    """A cubic Bezier from start to end whose inner control points bow out along ``normal``."""
    t = np.linspace(0.0, 1.0, points)[:, np.newaxis]
    control_1 = start + (end - start) / 3.0 + normal * rng.normal(0.0, bend)
    control_2 = start + 2.0 * (end - start) / 3.0 + normal * rng.normal(0.0, bend)
    return (
        (1 - t) ** 3 * start
        + 3 * (1 - t) ** 2 * t * control_1
        + 3 * (1 - t) * t**2 * control_2
        + t**3 * end
    )


def _wiggle(path: np.ndarray, normal: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """Adds a smooth random sideways wander: real nerves are tortuous, not perfect curves."""
    offsets = _varying(1.0, 1.0, len(path), rng, points_per_knot=5) - 1.0  # smooth, in [-1, 1]
    return path + offsets[:, np.newaxis] * amplitude * normal


def _varying(
    base: float, relative: float, count: int, rng: np.random.Generator, points_per_knot: int = 12
) -> np.ndarray:
    """``base`` modulated along a fibre by a smooth random factor in 1 +- relative."""
    knots = rng.uniform(1.0 - relative, 1.0 + relative, size=max(count // points_per_knot, 2))
    return base * np.interp(np.linspace(0, len(knots) - 1, count), np.arange(len(knots)), knots)


def _rotate(vector: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([cos * vector[0] - sin * vector[1], sin * vector[0] + cos * vector[1]])


def _draw_fibre(
    canvas: np.ndarray,
    path: np.ndarray,
    thickness: np.ndarray,
    brightness: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Draws a fibre segment by segment so thickness and brightness can change along it.

    Overlaps keep the brighter value, as two nerves crossing do not add up to saturation.
    """
    layer = np.zeros_like(canvas)
    # plain Python values: OpenCV's argument parsing of numpy scalars dominates otherwise
    points = [tuple(point) for point in np.round(path).astype(np.int32).tolist()]
    beads = 1.0 + 0.15 * np.sin(np.arange(len(path)) * rng.uniform(0.8, 1.6))  # varicosities
    values = np.clip(brightness * beads, 0.05, 1.0).tolist()
    widths = np.maximum(np.round(thickness), 1).astype(int).tolist()
    for start, end, value, width in zip(points[:-1], points[1:], values, widths):
        cv2.line(layer, start, end, value, thickness=width, lineType=cv2.LINE_8)
    np.maximum(canvas, layer, out=canvas)


def _background(rng: np.random.Generator, height: int, width: int, scale: float) -> np.ndarray:
    """Dark tissue: a base level, faint low-frequency variation and fine granular texture."""
    base = rng.uniform(0.12, 0.22)
    coarse = rng.normal(0.0, 0.015, size=(6, 6)).astype(np.float32)
    coarse = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal(size=(height, width), dtype=np.float32) * 0.09
    grain = cv2.GaussianBlur(grain, (0, 0), sigmaX=max(0.9 * scale, 0.7))
    return np.clip(base + coarse + grain, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- helpers
def _as_rng(rng: SeedOrRng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _image_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, stream, index])


def _as_size(size: Size) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    height, width = (int(value) for value in size)
    if height < 8 or width < 8:
        raise ValueError(f"size must be at least 8x8, got {height}x{width}")
    return height, width


def _with_channels(image: np.ndarray, channels: int) -> np.ndarray:
    return np.repeat(image[:, :, np.newaxis], channels, axis=-1)


def _prepare_folder(folder: str, overwrite: bool) -> None:
    """Refuses to mix a new set into an old one; with ``overwrite`` removes the old set's images."""
    existing = [
        os.path.join(folder, sub, name)
        for sub in SUBFOLDERS
        if os.path.isdir(os.path.join(folder, sub))
        for name in os.listdir(os.path.join(folder, sub))
    ]
    if existing and not overwrite:
        raise InputError(
            f"'{folder}' already holds a data set ({len(existing)} files): pass --overwrite to replace it"
        )
    for path in existing:
        name = os.path.basename(path)
        if name.endswith(".png") and name.startswith(("syn_", "test_")):  # only what we made
            os.remove(path)
    for sub in SUBFOLDERS:
        os.makedirs(os.path.join(folder, sub), exist_ok=True)


# ----------------------------------------------------------------------------- command line
def _parse_size(text: str) -> Tuple[int, int]:
    parts = text.lower().split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}") from None
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f"size must be N or HxW, got {text!r}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m ssp_keras.data.synthetic --out DIR --seed 0 ...``: writes a synthetic set."""
    parser = argparse.ArgumentParser(
        prog="python -m ssp_keras.data.synthetic",
        description="Write a CORN-style synthetic nerve-fibre data set (trainA/trainB/testA/testB/masks).",
    )
    parser.add_argument("--out", required=True, help="folder to create")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=12, help="training images per domain")
    parser.add_argument("--test-count", type=int, default=4, help="LQ/HQ test pairs with masks")
    parser.add_argument("--size", type=_parse_size, default=DEFAULT_SIZE, help="N or HxW (default 256)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)
    parser.add_argument("--paired", action="store_true", help="trainB shows the same scenes as trainA")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing synthetic set")
    parser.add_argument("--ramp-strength", type=float, default=DEFAULT_RAMP_STRENGTH,
                        help=f"LQ illumination falloff, 0..1 (default {DEFAULT_RAMP_STRENGTH})")
    parser.add_argument("--blur-sigma", type=float, default=DEFAULT_BLUR_SIGMA,
                        help=f"LQ Gaussian blur in pixels at 256x256, 0 = none (default {DEFAULT_BLUR_SIGMA})")
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                        help=f"LQ multiplicative speckle std, 0 = none (default {DEFAULT_NOISE})")
    args = parser.parse_args(argv)
    try:
        description = generate_dataset(
            args.out,
            count=args.count,
            size=args.size,
            seed=args.seed,
            unpaired=not args.paired,
            test_count=args.test_count,
            channels=args.channels,
            overwrite=args.overwrite,
            ramp_strength=args.ramp_strength,
            blur_sigma=args.blur_sigma,
            noise=args.noise,
        )
    except (InputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {description['count']} + {description['count']} training and "
        f"{description['test_count']} test images ({args.size[0]}x{args.size[1]}) to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
