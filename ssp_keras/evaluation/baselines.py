"""Classical enhancement baselines that every report compares SSP-Net against (SPEC section 6).

* ``identity``: the original image.
* ``clahe``: contrast-limited adaptive histogram equalisation (Zuiderveld, "Contrast Limited
  Adaptive Histogram Equalization", Graphics Gems IV, 1994) with OpenCV, on the gray level or, for
  RGB, on the L channel of CIE Lab.
* ``dcp``: dark channel prior dehazing (K. He, J. Sun, X. Tang, "Single Image Haze Removal Using
  Dark Channel Prior", CVPR 2009 / IEEE TPAMI 33(12), 2011) with the transmission refined by the
  guided filter (K. He, J. Sun, X. Tang, "Guided Image Filtering", ECCV 2010), applied by default to
  the inverted image (see :func:`dark_channel_prior`).
* ``flat_field``: retrospective flat-field (shading) correction: the image divided by an estimate
  of its illumination, a heavy Gaussian blur of the image itself (see :func:`flat_field`).
* ``flat_field_nlm``: flat-field correction, then non-local means denoising (A. Buades, B. Coll,
  J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005) with OpenCV, its strength
  set from the image's estimated noise (see :func:`flat_field_nlm`): the classical restorer.

Every baseline takes an image ``[H, W]`` or ``[H, W, C]`` (C = 1 or 3, RGB) that is float in [0, 1]
(``uint8`` is accepted and divided by 255) and returns float32 in [0, 1] of the same shape. Bad
input (NaN/Inf, wrong rank or channel count, floats outside [0, 1]) raises
:class:`ssp_keras.errors.InputError`, a ``ValueError`` naming the problem.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import cv2
import numpy as np

from ssp_keras.metrics.no_reference import check_image


def _as_unit_float(image) -> np.ndarray:
    """Validated image as float32 ``[H, W, C]`` in [0, 1] (a new array)."""
    array = check_image(image)
    if array.dtype == np.uint8:
        unit = array.astype(np.float32) / 255.0
    else:
        # check_image tolerates half an 8-bit step outside [0, 1]; clip it away.
        unit = np.clip(array.astype(np.float32), 0.0, 1.0)
    return unit if unit.ndim == 3 else unit[..., None]


def _like_input(result: np.ndarray, image) -> np.ndarray:
    """``result`` ``[H, W, C]`` back to the input's rank, float32, clipped to [0, 1]."""
    result = np.clip(result, 0.0, 1.0).astype(np.float32, copy=False)
    return result[..., 0] if np.ndim(image) == 2 else result


def identity(image) -> np.ndarray:
    """The original image (validated, as float32 in [0, 1], same shape)."""
    return _like_input(_as_unit_float(image), image)


def clahe(image, clip_limit: float = 2.0, tile_grid_size: Tuple[int, int] = (8, 8)) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (OpenCV ``createCLAHE``).

    Gray images are equalised directly; RGB images on the lightness L of CIE Lab, so hues are kept.
    OpenCV equalises 8-bit histograms, so the gray level (or L, rescaled from 0..100) is quantised
    to 256 levels first; with 16-bit input its clip limit would act on 65536 bins instead.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` (C = 1 or 3, RGB), float in [0, 1] or ``uint8``.
        clip_limit: OpenCV's contrast limit (histogram bins are clipped at this multiple of the mean).
        tile_grid_size: tiles per (column, row) direction.

    Returns:
        float32 in [0, 1], the input's shape.
    """
    unit = _as_unit_float(image)
    tiles = tuple(int(count) for count in tile_grid_size)
    equaliser = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=tiles)
    if unit.shape[2] == 1:
        gray8 = np.floor(unit[..., 0] * 255.0 + 0.5).astype(np.uint8)
        return _like_input(equaliser.apply(gray8)[..., None].astype(np.float32) / 255.0, image)
    lab = cv2.cvtColor(unit, cv2.COLOR_RGB2LAB)  # float input: L in [0, 100]
    lightness8 = np.floor(lab[..., 0] * (255.0 / 100.0) + 0.5).clip(0, 255).astype(np.uint8)
    lab[..., 0] = equaliser.apply(lightness8).astype(np.float32) * (100.0 / 255.0)
    return _like_input(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), image)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Gray-guide guided filter (He et al. 2010, Algorithm 1): edge-preserving smoothing of ``source``.

    Box means are taken over the ``(2 radius + 1)^2`` window clipped to the image, divided by the
    number of pixels actually inside (as the authors' code), so borders are not darkened.

    Args:
        guide: ``[H, W]`` guidance image (values in [0, 1]).
        source: ``[H, W]`` image to filter.
        radius: window radius in pixels (>= 1).
        eps: regularisation; larger values smooth more across weak edges.

    Returns:
        float64 ``[H, W]``.
    """
    guide = np.asarray(guide, dtype=np.float64)
    source = np.asarray(source, dtype=np.float64)
    window = (2 * radius + 1, 2 * radius + 1)

    def window_sum(values: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(values, -1, window, normalize=False, borderType=cv2.BORDER_CONSTANT)

    pixel_count = window_sum(np.ones_like(guide))

    def box_mean(values: np.ndarray) -> np.ndarray:
        return window_sum(values) / pixel_count

    mean_guide = box_mean(guide)
    mean_source = box_mean(source)
    covariance = box_mean(guide * source) - mean_guide * mean_source
    variance = box_mean(guide * guide) - mean_guide * mean_guide
    slope = covariance / (variance + eps)
    offset = mean_source - slope * mean_guide
    return box_mean(slope) * guide + box_mean(offset)


def _dark_channel(image: np.ndarray, patch_size: int) -> np.ndarray:
    """Minimum over channels and over a ``patch_size`` square around each pixel, ``[H, W]``."""
    kernel = np.ones((patch_size, patch_size), np.uint8)
    # cv2.erode pads with +inf-like values, so patches at the border use only pixels inside.
    return cv2.erode(image.min(axis=2), kernel)


def dark_channel_prior(
    image,
    patch_size: int = 15,
    omega: float = 0.95,
    t0: float = 0.1,
    brightest_fraction: float = 0.001,
    guided_radius: Optional[int] = None,
    guided_eps: float = 1e-3,
    invert: bool = True,
) -> np.ndarray:
    """Dark channel prior enhancement (He et al. 2009/2011) with guided-filter refinement.

    Steps, on ``I`` (the image, or ``1 - image`` when ``invert``): dark channel with a
    ``patch_size`` square; atmospheric light ``A`` = the colour of the brightest pixel (mean over
    channels) among the ``brightest_fraction`` of pixels with the highest dark channel; transmission
    ``t = 1 - omega * dark_channel(I / A)``, refined by :func:`guided_filter` guided by the gray
    level of ``I``; radiance ``J = (I - A) / max(t, t0) + A``, clipped to [0, 1] (and inverted back).
    Gray images are treated as a one-channel image (the dark channel is then a local minimum).

    Why ``invert=True`` by default: the prior says haze-free patches contain a nearly black pixel,
    and haze lifts them towards ``A``. Corneal confocal images are the opposite of a hazy scene (dark
    background, bright nerve fibres, dim uneven illumination), but their inverse looks hazy: bright
    veil, dark structures. Dehazing the inverse and inverting back is the usual low-light
    enhancement trick (X. Dong et al., "Fast efficient algorithm for enhancement of low lighting
    video", ICME 2011). Pass ``invert=False`` for ordinary hazy images.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` (C = 1 or 3), float in [0, 1] or ``uint8``.
        patch_size: side of the dark-channel window (15 in the paper).
        omega: fraction of haze removed (0.95 keeps a little for depth perception).
        t0: lower bound of the transmission, against noise amplification.
        brightest_fraction: share of the highest dark-channel pixels searched for ``A``.
        guided_radius: guided-filter radius; default ``round(min(H, W) / 8)`` (48 px for 384x384,
            in the 40-60 px range the paper uses on images of that size).
        guided_eps: guided-filter regularisation.
        invert: dehaze the inverted image (the default, for dark-background microscopy).

    Returns:
        float32 in [0, 1], the input's shape.
    """
    unit = _as_unit_float(image).astype(np.float64)
    height, width, channels = unit.shape
    radius = guided_radius if guided_radius is not None else max(1, int(round(min(height, width) / 8)))
    hazy = 1.0 - unit if invert else unit

    dark = _dark_channel(hazy, patch_size)
    candidate_count = max(1, int(round(brightest_fraction * dark.size)))
    candidates = np.argpartition(dark.ravel(), dark.size - candidate_count)[-candidate_count:]
    pixels = hazy.reshape(-1, channels)
    atmospheric_light = pixels[candidates[np.argmax(pixels[candidates].mean(axis=1))]]
    # A black "atmosphere" (an all-dark image) would divide by zero; it cannot be dehazed anyway.
    atmospheric_light = np.maximum(atmospheric_light, 1e-3)

    transmission = 1.0 - omega * _dark_channel(hazy / atmospheric_light, patch_size)
    refined = guided_filter(hazy.mean(axis=2), transmission, radius, guided_eps)
    transmission = np.maximum(refined, t0)[..., None]
    radiance = np.clip((hazy - atmospheric_light) / transmission + atmospheric_light, 0.0, 1.0)
    return _like_input(1.0 - radiance if invert else radiance, image)


def flat_field(image, sigma: Optional[float] = None, floor: float = 1e-3) -> np.ndarray:
    """Retrospective flat-field (shading) correction with a Gaussian-blur illumination estimate.

    The image is modelled as ``I = R * F``: the scene's reflectance ``R`` times a smooth
    illumination (shading) field ``F``. Without a calibration ("flat") frame, ``F`` is estimated
    from the image itself as a low-pass version of it, here a Gaussian blur far wider than any
    structure of interest, and the corrected image is ``I / F``, rescaled so that its mean equals
    the input's. This is the classical retrospective shading correction of microscopy (e.g.
    D. Tomazevic, B. Likar, F. Pernus, "Comparative evaluation of retrospective shading correction
    methods", J. Microscopy 208(3), 2002: the "low-pass filtering" method), and the division by a
    low-pass field is what homomorphic filtering does in the log domain (A. V. Oppenheim, R. W.
    Schafer, T. G. Stockham, "Nonlinear filtering of multiplied and convolved signals", Proc. IEEE
    56(8), 1968): ``log I - lowpass(log I)``, with the blur taken on ``I`` rather than ``log I``.

    Each channel is corrected with its own field and keeps its own mean. Large bright structures
    (wider than about ``sigma``) are partly taken for illumination and flattened too.

    Args:
        image: ``[H, W]`` or ``[H, W, C]`` (C = 1 or 3), float in [0, 1] or ``uint8``.
        sigma: standard deviation of the Gaussian illumination estimate in pixels; default
            ``min(H, W) / 8`` (48 px for 384x384). Computed with ``cv2.GaussianBlur`` (OpenCV's
            kernel for float images, about ``8 sigma + 1`` taps) with reflected borders
            (``BORDER_REFLECT``).
        floor: the field is clamped to at least this before dividing (dark regions and all-black
            images do not divide by ~0).

    Returns:
        float32 in [0, 1], the input's shape.
    """
    unit = _as_unit_float(image).astype(np.float64)
    height, width, channels = unit.shape
    sigma = float(sigma) if sigma is not None else min(height, width) / 8.0
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma!r}")
    field = cv2.GaussianBlur(unit, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    field = field.reshape(unit.shape)  # OpenCV drops a trailing axis of size 1
    corrected = unit / np.maximum(field, floor)
    # Keep each channel's mean brightness: the field's level is not shading, only its variation is.
    input_mean = unit.reshape(-1, channels).mean(axis=0)
    corrected_mean = corrected.reshape(-1, channels).mean(axis=0)
    scale = np.where(corrected_mean > 0, input_mean / np.maximum(corrected_mean, 1e-12), 0.0)
    return _like_input(corrected * scale, image)


def estimate_noise(image) -> float:
    """Standard deviation of white Gaussian noise in an image, in its [0, 1] units.

    J. Immerkaer, "Fast noise variance estimation", Computer Vision and Image Understanding 64(2),
    1996: the image is filtered with the difference of two Laplacians (which cancels smooth
    structure) and ``sigma = sqrt(pi / 2) / (6 (H - 2)(W - 2)) * sum |filtered|``, over the mean of
    the channels. Edges inflate it a little; 0 for a noise-free flat or linear image.
    """
    plane = _as_unit_float(image).astype(np.float64).mean(axis=2)
    height, width = plane.shape
    if min(height, width) < 3:
        return 0.0
    mask = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
    filtered = cv2.filter2D(plane, cv2.CV_64F, mask)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(filtered).sum() / (6.0 * (height - 2) * (width - 2)))


def flat_field_nlm(image, strength: float = 1.0, template_window: int = 7, search_window: int = 21) -> np.ndarray:
    """Flat-field correction (:func:`flat_field`), then non-local means denoising.

    OpenCV's ``fastNlMeansDenoising`` (gray) or ``fastNlMeansDenoisingColored`` (RGB) on the 8-bit
    corrected image, with the filter strength ``h = strength * sigma`` in grey levels, where sigma
    is the corrected image's noise (:func:`estimate_noise`): the filter adapts to each image's noise
    instead of one fixed h. ``template_window`` and ``search_window`` are OpenCV's defaults.

    Returns:
        float32 in [0, 1], the input's shape (8-bit levels of the denoised image).
    """
    corrected = _as_unit_float(flat_field(image))
    h = max(float(strength) * 255.0 * estimate_noise(corrected), 0.5)
    eight_bit = np.round(corrected * 255.0).astype(np.uint8)
    if eight_bit.shape[2] == 3:
        denoised = cv2.fastNlMeansDenoisingColored(eight_bit, None, h, h, template_window, search_window)
    else:
        denoised = cv2.fastNlMeansDenoising(eight_bit[:, :, 0], None, h, template_window, search_window)[:, :, None]
    return _like_input(denoised.astype(np.float32) / 255.0, image)


BASELINES: Dict[str, Callable[..., np.ndarray]] = {
    "identity": identity,
    "clahe": clahe,
    "dcp": dark_channel_prior,
    "flat_field": flat_field,
    "flat_field_nlm": flat_field_nlm,
}


def get_baseline(name: str) -> Callable[..., np.ndarray]:
    """The baseline registered under ``name`` (one of :data:`BASELINES`).

    Raises:
        ValueError: unknown name; the message lists the choices.
    """
    try:
        return BASELINES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}") from None
