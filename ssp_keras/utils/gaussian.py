"""The one Gaussian window of the project (NumPy only, float64).

SSIM and the structure loss L_TE (11 taps, sigma 1.5, separable) and the MSCN coefficients of NIQE
and PIQE (7x7, sigma 7/6, MATLAB ``fspecial('gaussian', ...)``) all weight a neighbourhood with the
same sampled Gaussian: samples at integer offsets from the window's centre, normalised to sum 1.
The loss casts the 1-D taps to float32 for ``keras.ops``; the metrics use float64 as they are.
"""

from __future__ import annotations

import numpy as np


def _gaussian_profile(size: int, sigma: float) -> np.ndarray:
    """``exp(-x^2 / (2 sigma^2))`` at the ``size`` integer offsets ``x`` about the centre, float64."""
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    return np.exp(-(offsets**2) / (2.0 * sigma**2))


def gaussian_1d(size: int, sigma: float) -> np.ndarray:
    """The separable window's taps: float64 ``[size]``, summing to 1."""
    profile = _gaussian_profile(size, sigma)
    return profile / profile.sum()


def gaussian_window(size: int = 7, sigma: float = 7.0 / 6.0) -> np.ndarray:
    """A normalised 2-D Gaussian window float64 ``[size, size]`` (MATLAB ``fspecial('gaussian', ...)``).

    The defaults (7x7, sigma 7/6: sampled out to 3 standard deviations) are those of NIQE and PIQE.
    Normalised as a whole (not as the outer product of `gaussian_1d`), as ``fspecial`` does.
    """
    profile = _gaussian_profile(size, sigma)
    window = np.outer(profile, profile)
    return window / window.sum()
