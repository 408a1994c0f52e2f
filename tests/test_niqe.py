"""NIQE: MATLAB's test vector, the MATLAB-style resize, degenerate inputs and sanity of the ranking."""

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from ssp_keras.metrics import niqe
from ssp_keras.metrics.niqe import _matlab_resize_matrix, load_pristine_model, matlab_imresize
from helpers import pink_noise  # the shared natural-like test texture

MATLAB_BABOON_NIQE = 5.72957338  # MATLAB R2021a niqe on the BT.601 luma of baboon.png
# 0.5 * cubic(d / 2) at d = -3.5 ... 3.5: cubic = 0.8671875 (|x| = 0.25), 0.2265625 (0.75),
# -0.0703125 (1.25), -0.0234375 (1.75); they already sum to 1.
HALF_SCALE_TAPS = np.array(
    [-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875]
)


@pytest.fixture
def baboon(shared_data):
    return np.asarray(Image.open(shared_data / "niqe" / "baboon.png").convert("RGB"))


def test_baboon_reproduces_matlab(baboon):
    score = niqe(baboon)
    assert abs(score - MATLAB_BABOON_NIQE) < 1e-3, score
    # Tighter: with single-precision MSCN moments the port agrees to ~2e-6 (float64 drifts to 4e-4).
    assert abs(score - MATLAB_BABOON_NIQE) < 1e-4, score
    # Same image as float in [0, 1]: same 8-bit luma, same score.
    assert niqe(baboon.astype(np.float32) / 255) == pytest.approx(score, abs=1e-12)


def test_gray_and_gray_stored_as_rgb_agree(baboon):
    gray = np.asarray(Image.fromarray(baboon).convert("L"))
    assert niqe(np.repeat(gray[..., None], 3, axis=2)) == pytest.approx(niqe(gray), abs=1e-12)
    assert niqe(gray[..., None]) == pytest.approx(niqe(gray), abs=1e-12)


def test_blur_and_noise_worsen_the_score():
    texture = pink_noise(192, seed=3)
    clean = niqe(texture)
    assert niqe(gaussian_filter(texture, 3.0)) > clean + 1.0
    noisy = np.clip(texture + np.random.default_rng(4).normal(0, 0.1, texture.shape), 0, 1)
    assert niqe(noisy) > clean + 1.0


def test_pristine_model_is_the_packaged_36_dimensional_gaussian():
    mean, covariance, window = load_pristine_model()
    assert mean.shape == (36,) and covariance.shape == (36, 36) and window.shape == (7, 7)
    np.testing.assert_allclose(covariance, covariance.T)
    assert not mean.flags.writeable


def test_single_block_image_is_scored():
    assert np.isfinite(niqe(pink_noise(96, seed=5)))


def test_constant_image_has_no_defined_score():
    assert np.isnan(niqe(np.full((96, 96), 0.5)))


def test_too_small_and_bad_images_raise():
    with pytest.raises(ValueError, match="96x96"):
        niqe(np.zeros((95, 200)))
    with pytest.raises(ValueError, match="NaN"):
        niqe(np.full((96, 96), np.nan))
    with pytest.raises(ValueError, match="rank"):
        niqe(np.zeros((1, 96, 96, 1)))


# --- MATLAB imresize ------------------------------------------------------------------------------


def test_resize_weights_are_the_antialiased_cubic_kernel():
    # Scale 0.5: output k (1-based) sits at input 2k - 0.5; the cubic kernel stretched by 2 puts
    # weights 0.5 * cubic(d / 2) at distances d = 0.5, 1.5, 2.5, 3.5 on each side.
    matrix = _matlab_resize_matrix(16, 0.5)
    assert matrix.shape == (8, 16)
    np.testing.assert_allclose(matrix[4, 5:13], HALF_SCALE_TAPS, atol=1e-15)
    assert np.count_nonzero(matrix[4]) == 8
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)


def test_resize_mirrors_the_border():
    # Output 1 at input 1.5 needs inputs -2..5 (1-based); -2, -1, 0 mirror onto 3, 2, 1.
    matrix = _matlab_resize_matrix(16, 0.5)
    expected = np.zeros(16)
    for tap, source in zip(HALF_SCALE_TAPS, [2, 1, 0, 0, 1, 2, 3, 4]):
        expected[source] += tap
    np.testing.assert_allclose(matrix[0], expected, atol=1e-15)


def test_resize_keeps_constants_and_interior_ramps():
    assert matlab_imresize(np.full((10, 7), 3.0), 0.5).shape == (5, 4)  # ceil, as MATLAB
    np.testing.assert_allclose(matlab_imresize(np.full((10, 7), 3.0), 0.5), 3.0)
    ramp = np.tile(np.arange(1.0, 33.0), (4, 1))
    resized = matlab_imresize(ramp, 0.5)
    # Away from the mirrored border a linear ramp maps to its value at 2k - 0.5.
    np.testing.assert_allclose(resized[:, 2:-2], np.tile(2 * np.arange(3, 15) - 0.5, (2, 1)))
