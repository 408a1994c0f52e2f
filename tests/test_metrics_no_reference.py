"""Entropy, average gradient, the 8-bit luma helper and MSCN: hand-computed values and input checks."""

import math

import numpy as np
import pytest

from ssp_keras.metrics import average_gradient, entropy, to_luma8
from ssp_keras.metrics.no_reference import gaussian_window, mscn_coefficients


# --- to_luma8 -------------------------------------------------------------------------------------


def test_uint8_gray_is_used_as_is():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(to_luma8(gray), gray)
    np.testing.assert_array_equal(to_luma8(gray[..., None]), gray)


def test_float_gray_is_scaled_by_255_and_rounded_half_away_from_zero():
    # 126.5 rounds to 127 as in MATLAB (numpy's round would give 126).
    values = np.array([[0.0, 126.5 / 255, 1.0, 1.0 + 0.4 / 255]])
    np.testing.assert_array_equal(to_luma8(values), [[0, 127, 255, 255]])
    assert to_luma8(values).dtype == np.uint8


def test_rgb_uses_bt601_luma_like_matlab_rgb2ycbcr():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0], [255, 255, 0]]], dtype=np.uint8)
    # Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in [0, 1]); black is 16.
    red, green, blue, yellow = 16 + 65.481, 16 + 128.553, 16 + 24.966, 16 + 65.481 + 128.553
    expected = [[round(red), round(green), round(blue), 16, round(yellow)]]
    np.testing.assert_array_equal(to_luma8(rgb), expected)
    np.testing.assert_array_equal(to_luma8(rgb.astype(np.float32) / 255), expected)


def test_rgb2gray_conversion_matches_matlab_weights():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(to_luma8(rgb, conversion="rgb2gray"), [[76, 150, 29, 255]])


def test_rgb_with_identical_channels_is_gray():
    gray = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(to_luma8(np.repeat(gray[..., None], 3, axis=2)), gray)


def test_unknown_conversion_is_rejected():
    with pytest.raises(ValueError, match="conversion"):
        to_luma8(np.zeros((4, 4)), conversion="lab")


@pytest.mark.parametrize(
    "image, message",
    [
        (np.full((4, 4), np.nan), "NaN"),
        (np.full((4, 4), np.inf), "Inf"),
        (np.zeros((2, 4, 4, 1)), "rank 4"),
        (np.zeros(16), "rank 1"),
        (np.zeros((4, 4, 2)), "channels"),
        (np.zeros((0, 4)), "empty"),
        (np.zeros((4, 4), dtype=np.int32), "dtype"),
        (np.full((4, 4), 200.0), r"\[0, 1\].*divide it by 255"),
        (np.full((4, 4), -0.1), r"\[0, 1\]"),
    ],
)
def test_bad_images_raise_value_error_naming_the_problem(image, message):
    for metric in (entropy, average_gradient, to_luma8):
        with pytest.raises(ValueError, match=message):
            metric(image)


# --- entropy --------------------------------------------------------------------------------------


def test_entropy_hand_computed_values():
    assert entropy(np.full((4, 4), 7, dtype=np.uint8)) == 0.0
    halves = np.array([[0, 0], [255, 255]], dtype=np.uint8)
    assert entropy(halves) == pytest.approx(1.0)
    quarters = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    assert entropy(quarters) == pytest.approx(2.0)
    # p = (3/4, 1/4): -(0.75 log2 0.75 + 0.25 log2 0.25) = 0.811278...
    skewed = np.array([[0, 0], [0, 255]], dtype=np.uint8)
    assert entropy(skewed) == pytest.approx(0.8112781244591328, abs=1e-12)
    every_level = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert entropy(every_level) == pytest.approx(8.0)


def test_entropy_same_for_uint8_float_and_channel_layouts():
    gray = np.random.default_rng(1).integers(0, 256, (32, 32), dtype=np.uint8)
    reference = entropy(gray)
    assert entropy(gray.astype(np.float32) / 255) == pytest.approx(reference)
    assert entropy(gray[..., None]) == pytest.approx(reference)
    assert entropy(np.repeat(gray[..., None], 3, axis=2)) == pytest.approx(reference)


# --- average gradient -----------------------------------------------------------------------------


def test_average_gradient_of_a_ramp_is_slope_over_sqrt2_borders_included():
    # f = 3 * column: gx = 3 everywhere (one-sided differences at the borders give 3 too), gy = 0.
    ramp = (3 * np.arange(10, dtype=np.uint8))[None, :].repeat(5, axis=0)
    assert average_gradient(ramp) == pytest.approx(3 / math.sqrt(2))


def test_average_gradient_hand_computed_impulse():
    # numpy.gradient on [[0,0,0],[0,9,0],[0,0,0]]: the four edge-centre pixels get one 9 (one-sided
    # difference at the border: 9 - 0), the centre and the corners get 0 (central differences
    # (0 - 0) / 2, and differences between zeros). Mean = 4 * 9 / sqrt(2) / 9 = 2 sqrt(2).
    impulse = np.zeros((3, 3), dtype=np.uint8)
    impulse[1, 1] = 9
    assert average_gradient(impulse) == pytest.approx(2 * math.sqrt(2))


def test_average_gradient_two_by_two():
    # gx = 10, gy = 20 at every pixel (one-sided): sqrt((100 + 400) / 2) = sqrt(250).
    tiny = np.array([[0, 10], [20, 30]], dtype=np.uint8)
    assert average_gradient(tiny) == pytest.approx(math.sqrt(250))


def test_average_gradient_of_float_input_uses_the_8bit_scale():
    ramp = (3 * np.arange(10, dtype=np.uint8))[None, :].repeat(5, axis=0)
    assert average_gradient(ramp.astype(np.float64) / 255) == pytest.approx(3 / math.sqrt(2))
    assert average_gradient(np.zeros((4, 4))) == 0.0


def test_average_gradient_needs_two_pixels_per_side():
    with pytest.raises(ValueError, match="2x2"):
        average_gradient(np.zeros((1, 8), dtype=np.uint8))


# --- MSCN -----------------------------------------------------------------------------------------


def test_gaussian_window_is_normalised_and_symmetric():
    window = gaussian_window(7, 7 / 6)
    assert window.shape == (7, 7)
    assert window.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(window, window.T)
    np.testing.assert_allclose(window, window[::-1, ::-1])


def test_mscn_of_a_constant_image_is_zero_and_precision_is_selectable():
    window = gaussian_window()
    flat = np.full((20, 20), 100.0)
    np.testing.assert_allclose(mscn_coefficients(flat, window), 0.0, atol=1e-9)
    assert mscn_coefficients(flat, window, dtype=np.float32).dtype == np.float32


def test_mscn_of_a_step_hand_computed():
    # A vertical step 0 | 255: at a pixel beside it, with w the window weight on the far side,
    # mu = 255 w (or 255 (1 - w)), sigma = 255 sqrt(w (1 - w)).
    window = gaussian_window()
    step = np.zeros((9, 10))
    step[:, 5:] = 255.0
    profile = window.sum(axis=0)
    far_weight = profile[4:].sum()  # weights that reach the other side from column 4
    mu = 255 * far_weight
    sigma = 255 * math.sqrt(far_weight * (1 - far_weight))
    assert mscn_coefficients(step, window)[4, 4] == pytest.approx((0 - mu) / (sigma + 1))


def test_banded_metrics_equal_whole_image_ones(monkeypatch):
    """The metrics run on bands of rows (memory); with bands of a few rows the values are those of
    one band covering the whole image (odd sizes: partial blocks, padding and crops)."""
    from ssp_keras.metrics import no_reference, piqe
    from ssp_keras.metrics.niqe import matlab_imresize, niqe
    from helpers import pink_noise

    colour = np.stack([pink_noise(300, seed) for seed in (1, 2, 3)], axis=-1)[:291, :277].astype(np.float32)
    gray = colour[..., 0]

    def measure():
        return (no_reference.to_luma8(colour), no_reference.average_gradient(gray), niqe(gray), piqe(colour),
                matlab_imresize(gray * 255, 0.5))

    monkeypatch.setattr(no_reference, "BAND_PIXELS", 10**9)
    whole = measure()
    monkeypatch.setattr(no_reference, "BAND_PIXELS", 277 * 7)  # 7 rows; 16 for PIQE's, 96 for NIQE's blocks
    assert no_reference.row_bands(291, 277)[:2] == [(0, 7), (7, 14)]
    banded = measure()
    np.testing.assert_array_equal(banded[0], whole[0])
    assert banded[1] == pytest.approx(whole[1], rel=1e-12)
    assert banded[2] == pytest.approx(whole[2], abs=1e-12) and banded[3] == pytest.approx(whole[3], abs=1e-12)
    np.testing.assert_allclose(banded[4], whole[4], rtol=0, atol=1e-9)
