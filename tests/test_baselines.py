"""Baselines: shapes, dtypes and ranges, CLAHE contrast, DCP on a synthetic hazy image, bad input."""

import numpy as np
import pytest

from ssp_keras.errors import InputError
from ssp_keras.evaluation.baselines import (
    BASELINES,
    clahe,
    dark_channel_prior,
    get_baseline,
    guided_filter,
    identity,
)
from helpers import pink_noise  # the shared natural-like test texture


def mse(a, b):
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def hazy_scene(channels):
    """A haze-free scene J (a dark pixel in every 15x15 patch) and the hazy J t + A (1 - t)."""
    scene = np.stack([pink_noise(96, seed) for seed in range(1, channels + 1)], axis=2)
    scene[::6, ::6] = 0.0  # small shadows: the dark channel prior holds
    transmission = np.linspace(0.35, 0.85, 96)[None, :, None].repeat(96, axis=0)
    light = np.array([0.9, 0.92, 0.95][:channels])
    hazy = scene * transmission + light * (1 - transmission)
    return scene.astype(np.float32), hazy.astype(np.float32)


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("shape", [(40, 56), (40, 56, 1), (40, 56, 3)])
def test_shape_dtype_and_range_are_preserved(name, shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    original = image.copy()
    result = get_baseline(name)(image)
    assert result.shape == shape and result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0
    np.testing.assert_array_equal(image, original)  # input untouched


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_uint8_input_is_accepted(name):
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    result = get_baseline(name)(image)
    assert result.shape == (32, 32, 3) and result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0


def test_identity_returns_the_image():
    image = np.random.default_rng(2).random((8, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(identity(image), image)
    image8 = (image * 255).round().astype(np.uint8)
    np.testing.assert_allclose(identity(image8), image8 / 255, atol=1e-6)


def test_clahe_raises_contrast_of_a_low_contrast_image():
    low_contrast = (0.4 + 0.1 * pink_noise(96, seed=7)).astype(np.float32)
    assert clahe(low_contrast).std() > 2 * low_contrast.std()
    rgb = np.repeat(low_contrast[..., None], 3, axis=2) * np.array([1.0, 0.9, 0.8], np.float32)
    enhanced = clahe(rgb)
    assert enhanced.mean(axis=2).std() > 2 * rgb.mean(axis=2).std()


def test_clahe_keeps_gray_rgb_gray():
    gray = pink_noise(64, seed=8).astype(np.float32)
    enhanced = clahe(np.repeat(gray[..., None], 3, axis=2))
    assert np.abs(enhanced - enhanced.mean(axis=2, keepdims=True)).max() < 0.02


@pytest.mark.parametrize("channels", [3, 1])
def test_dcp_dehazes_a_synthetic_hazy_image(channels):
    scene, hazy = hazy_scene(channels)
    dehazed = dark_channel_prior(hazy, invert=False)
    assert mse(dehazed, scene) < 0.8 * mse(hazy, scene)


def test_dcp_default_inverts_for_dark_background_images():
    # A dark-background image whose inverse is hazy: the default (invert=True) must enhance it.
    scene, hazy = hazy_scene(3)
    dark_background, target = 1.0 - hazy, 1.0 - scene
    enhanced = dark_channel_prior(dark_background)
    assert mse(enhanced, target) < 0.8 * mse(dark_background, target)
    np.testing.assert_allclose(enhanced, 1.0 - dark_channel_prior(hazy, invert=False), atol=1e-5)


def test_dcp_on_a_black_image_does_not_divide_by_zero():
    result = dark_channel_prior(np.zeros((32, 32, 3), np.float32), invert=False)
    assert np.all(np.isfinite(result))


def test_guided_filter_keeps_constants_and_smooths_noise():
    guide = np.full((30, 30), 0.5)
    np.testing.assert_allclose(guided_filter(guide, np.full((30, 30), 0.7), radius=4, eps=1e-3), 0.7)
    noise = np.random.default_rng(3).random((30, 30))
    assert guided_filter(guide, noise, radius=4, eps=1e-3).std() < 0.5 * noise.std()


def test_registry_lookup():
    assert get_baseline("clahe") is clahe and get_baseline("dcp") is dark_channel_prior
    with pytest.raises(ValueError, match=r"unknown baseline 'sharpen'.*'clahe', 'dcp', 'flat_field', 'flat_field_nlm', 'identity'"):
        get_baseline("sharpen")


@pytest.mark.parametrize(
    "image, message",
    [
        (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
        (np.zeros((2, 8, 8, 3), np.float32), "rank 4"),
        (np.zeros((8, 8, 4), np.float32), "channels"),
        (np.full((8, 8), 3.0, np.float32), r"\[0, 1\]"),
    ],
)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_bad_input_raises_value_error_naming_the_problem(name, image, message):
    with pytest.raises(InputError, match=message):  # InputError: the ValueError the CLI reports in one line
        get_baseline(name)(image)


def test_estimate_noise_finds_a_known_noise_level():
    from ssp_keras.evaluation.baselines import estimate_noise

    rows, columns = np.indices((256, 256))
    smooth = 0.3 + 0.2 * rows / 255 + 0.1 * columns / 255  # a plane: its Laplacians cancel
    assert estimate_noise(smooth) == pytest.approx(0.0, abs=1e-6)  # float32 rounding only
    noisy = smooth + 0.05 * np.random.default_rng(0).standard_normal(smooth.shape)
    assert estimate_noise(noisy) == pytest.approx(0.05, rel=0.05)


def test_flat_field_nlm_removes_noise_that_flat_field_keeps():
    from ssp_keras.evaluation.baselines import flat_field, flat_field_nlm
    from ssp_keras.evaluation.quality import psnr

    clean = 0.3 + 0.4 * pink_noise(128, seed=4, exponent=2.5)
    noisy = np.clip(clean + 0.04 * np.random.default_rng(5).standard_normal(clean.shape), 0, 1).astype(np.float32)
    reference = flat_field(clean.astype(np.float32))
    assert psnr(flat_field_nlm(noisy), reference) > psnr(flat_field(noisy), reference) + 3.0
