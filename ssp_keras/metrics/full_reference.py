"""Full-reference image quality: an image measured against the clean image it should be.

* :func:`psnr`: peak signal-to-noise ratio in dB, data range 1 by default;
* :func:`ssim`: the standard SSIM of Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image
  quality assessment: from error visibility to structural similarity", IEEE TIP 13(4), 2004, as in
  the authors' ``ssim_index.m``: 11x11 Gaussian window with sigma 1.5 (`ssp_keras.utils.gaussian`),
  K1 = 0.01, K2 = 0.03, local statistics only where the window lies wholly inside the image
  ("valid"), averaged over the map (and over channels). It matches ``tf.image.ssim``;
* :func:`detail_correlation`: Pearson correlation of the fine detail (image minus its Gaussian blur,
  sigma 3) of two images: whether an enhancer kept the fibres and texture of the frame;
* :func:`detail_psnr`: PSNR of the detail layer (image minus its Gaussian blur, sigma 10) after
  matching the output's detail gain to the reference's: whether fibres and texture were restored,
  whatever the enhancer did to brightness and shading;
* :func:`matched_ssim`: SSIM after the output's illumination is matched to the reference's (its
  local mean, a Gaussian of sigma 10 px, brought to the reference's): illumination differences,
  which every illumination corrector makes and plain SSIM would count as error, are taken out;
* :func:`background_grain`: the fine detail left where a fibre mask says there are no fibres,
  relative to the local brightness: noise and grain a restorer left or added, at any brightness.

The no-reference metrics of the paper are in `ssp_keras.metrics.no_reference`, `niqe` and `piqe`;
illumination measures in `ssp_keras.metrics.illumination`. Images are ``[H, W]`` or ``[H, W, C]``
float arrays (values in [0, 1]; colour images are reduced to the mean over channels where a single
plane is needed).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ssp_keras.errors import InputError
from ssp_keras.metrics.illumination import as_plane
from ssp_keras.utils.gaussian import gaussian_1d

#: SSIM constants (Wang et al. 2004).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Gaussian blur (pixels) whose residual is the "fine detail" of :func:`detail_correlation`.
DETAIL_SIGMA = 3.0
#: Gaussian blur (pixels) whose residual is the detail layer of :func:`detail_psnr`.
DETAIL_PSNR_SIGMA = 10.0


def _as_hwc(image, name: str) -> np.ndarray:
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.size == 0:
        raise InputError(f"{name}: expected an image [H, W] or [H, W, C], got shape {np.shape(image)}")
    return array


def _same_shape(first: np.ndarray, second: np.ndarray) -> None:
    if first.shape != second.shape:
        raise InputError(f"images differ in shape: {first.shape} and {second.shape}")


def psnr(image, reference, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range**2 / MSE)`` in dB (``inf`` when equal)."""
    image, reference = _as_hwc(image, "image"), _as_hwc(reference, "reference")
    _same_shape(image, reference)
    mse = float(np.mean((image - reference) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range**2 / mse)


def ssim_map(
    image,
    reference,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    k1: float = SSIM_K1,
    k2: float = SSIM_K2,
) -> np.ndarray:
    """The local SSIM values ``[H - window + 1, W - window + 1, C]`` (see :func:`ssim`)."""
    image, reference = _as_hwc(image, "image"), _as_hwc(reference, "reference")
    _same_shape(image, reference)
    height, width = image.shape[:2]
    if height < window or width < window:
        raise InputError(f"SSIM needs images of at least {window}x{window} pixels, got {height}x{width}")
    kernel = gaussian_1d(window, sigma)
    cut = window // 2

    def local_mean(values: np.ndarray) -> np.ndarray:
        # Separable Gaussian; only the "valid" part (window inside the image) is kept, so the
        # border mode does not matter.
        filtered = cv2.sepFilter2D(values, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        return filtered[cut:height - cut, cut:width - cut]

    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    maps = []
    for channel in range(image.shape[2]):
        x, y = image[:, :, channel], reference[:, :, channel]
        mean_x, mean_y = local_mean(x), local_mean(y)
        var_x = local_mean(x * x) - mean_x**2
        var_y = local_mean(y * y) - mean_y**2
        cov_xy = local_mean(x * y) - mean_x * mean_y
        numerator = (2.0 * mean_x * mean_y + c1) * (2.0 * cov_xy + c2)
        denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
        maps.append(numerator / denominator)
    return np.stack(maps, axis=2)


def ssim(image, reference, **options) -> float:
    """Mean structural similarity of two images of the same shape (Wang et al. 2004).

    ``SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))``
    with local Gaussian-weighted statistics (``window`` x ``window``, ``sigma``), ``C1 = (K1 L)^2``,
    ``C2 = (K2 L)^2``, ``L = data_range``, averaged over the valid map and the channels. 1 for
    identical images. ``options``: ``data_range``, ``window``, ``sigma``, ``k1``, ``k2``, as
    :func:`ssim_map` takes them (the one list of SSIM parameters and their defaults).
    """
    return float(np.mean(ssim_map(image, reference, **options)))


def _blurred(plane: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of ``sigma`` pixels with reflected borders."""
    return cv2.GaussianBlur(plane, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def fine_detail(image, sigma: float = DETAIL_SIGMA) -> np.ndarray:
    """``image - GaussianBlur(image, sigma)`` (reflected borders), float64 ``[H, W]``."""
    plane = as_plane(image)
    return plane - _blurred(plane, sigma)


def pearson(first, second) -> float:
    """Pearson correlation of two arrays of the same shape (NaN when either is constant)."""
    first = np.asarray(first, dtype=np.float64).ravel()
    second = np.asarray(second, dtype=np.float64).ravel()
    if first.shape != second.shape:
        raise InputError(f"arrays differ in size: {first.size} and {second.size}")
    first = first - first.mean()
    second = second - second.mean()
    norm = math.sqrt(float(np.dot(first, first)) * float(np.dot(second, second)))
    if norm == 0.0:
        return float("nan")
    return float(np.dot(first, second)) / norm


def detail_correlation(output, reference, sigma: float = DETAIL_SIGMA) -> float:
    """Pearson correlation of the fine detail (:func:`fine_detail`) of ``output`` and ``reference``."""
    output, reference = as_plane(output, "output"), as_plane(reference, "reference")
    _same_shape(output, reference)
    return pearson(fine_detail(output, sigma), fine_detail(reference, sigma))


def _gain_matched(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``g output`` with the least-squares gain g that best matches ``reference``."""
    energy = float(np.dot(output.ravel(), output.ravel()))
    gain = float(np.dot(output.ravel(), reference.ravel())) / energy if energy > 0 else 0.0
    return gain * output


def detail_psnr(output, reference, sigma: float = DETAIL_PSNR_SIGMA) -> float:
    """PSNR (data range 1) of the gain-matched detail layer of ``output`` against ``reference``'s.

    Detail layer: ``x - GaussianBlur(x, sigma)`` (:func:`fine_detail`); the output's detail is
    scaled by the least-squares gain onto the reference's before the error is taken, so a global
    change of contrast is not counted, missing or smeared fibres and added noise are.
    """
    output, reference = as_plane(output, "output"), as_plane(reference, "reference")
    _same_shape(output, reference)
    reference_detail = fine_detail(reference, sigma)
    matched = _gain_matched(fine_detail(output, sigma), reference_detail)
    mse = float(np.mean((matched - reference_detail) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def illumination_matched(output, reference, sigma: float = DETAIL_PSNR_SIGMA) -> np.ndarray:
    """``output`` with its illumination matched to ``reference``'s (gray), float64 ``[H, W]``.

    ``output * blur(reference) / blur(output)``, blur a Gaussian of ``sigma`` pixels (reflected
    borders): shading and exposure differences at scales above ``sigma`` are taken out, what is
    left is the fibres, texture and noise.
    """
    output, reference = as_plane(output, "output"), as_plane(reference, "reference")
    _same_shape(output, reference)
    return output * _blurred(reference, sigma) / np.maximum(_blurred(output, sigma), 1e-6)


def matched_ssim(output, reference, sigma: float = DETAIL_PSNR_SIGMA) -> float:
    """:func:`ssim` of ``output`` with its illumination matched to ``reference``'s
    (:func:`illumination_matched`): SSIM judges the fibres, texture and noise, not the
    illumination correction."""
    return ssim(illumination_matched(output, reference, sigma), reference)


#: Pixels within this distance of a fibre are not background for :func:`background_grain`.
BACKGROUND_MARGIN = 5


def background_grain(image, mask, margin: int = BACKGROUND_MARGIN, sigma: float = DETAIL_SIGMA,
                     level_sigma: float = DETAIL_PSNR_SIGMA) -> float:
    """Standard deviation, over the background, of ``fine_detail(image, sigma)`` divided by the
    local level (a Gaussian of ``level_sigma`` px): grain as a fraction of the brightness, so that
    lifting a dark region does not count, but lifting it with its noise does.

    ``mask``: the fibres (values > 0.5), same height and width; the background is every pixel
    farther than ``margin`` pixels (a square neighbourhood) from them. Raises `InputError` when
    there is none.
    """
    plane, fibres = as_plane(image, "image"), as_plane(mask, "mask") > 0.5
    _same_shape(plane, fibres)
    size = 2 * int(margin) + 1
    background = cv2.dilate(fibres.astype(np.uint8), np.ones((size, size), np.uint8)) == 0
    if not background.any():
        raise InputError(f"no background: every pixel lies within {margin} px of the mask's fibres")
    relative = fine_detail(plane, sigma) / np.maximum(_blurred(plane, level_sigma), 1e-3)
    return float(relative[background].std())
