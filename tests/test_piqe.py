"""PIQE: agreement with a line-by-line transcription of MATLAB's piqe, and behaviour on built cases."""

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import correlate

from ssp_keras.metrics import piqe, piqe_with_masks
from helpers import pink_noise  # the shared natural-like test texture


def matlab_fspecial_gaussian(size, sigma):
    """MATLAB ``fspecial('gaussian', size, sigma)`` statement by statement (written here, not taken
    from the library, so the oracle shares no code with what it checks)."""
    half = (size - 1) / 2
    x, y = np.meshgrid(np.arange(-half, half + 1), np.arange(-half, half + 1))
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def matlab_piqe_transcription(gray8):
    """MATLAB piqe.m (2018) statement by statement, with loops, on a uint8 gray image: the oracle."""
    block_size, window_size = 16, 6
    image = gray8.astype(np.float64)
    rows_pad = (-image.shape[0]) % block_size
    columns_pad = (-image.shape[1]) % block_size
    image = np.pad(image, ((0, rows_pad), (0, columns_pad)), mode="edge")  # padarray 'replicate' 'post'
    window = matlab_fspecial_gaussian(7, 7 / 6)
    mu = correlate(image, window, mode="nearest")
    sigma = np.sqrt(np.abs(correlate(image * image, window, mode="nearest") - mu * mu))
    imnorm = (image - mu) / (sigma + 1)
    dist_block_scores, active_count = 0.0, 0
    for i in range(0, imnorm.shape[0], block_size):
        for j in range(0, imnorm.shape[1], block_size):
            block = imnorm[i : i + block_size, j : j + block_size]
            block_var = np.var(block, ddof=1)
            if block_var > 0.1:
                active_count += 1
                impaired = 0
                for edge in (block[0, :], block[:, -1], block[-1, :], block[:, 0]):
                    for start in range(block_size - window_size + 1):
                        if np.std(edge[start : start + window_size], ddof=1) < 0.1:
                            impaired = 1
                block_sigma = np.sqrt(block_var)
                center = np.concatenate([block[:, 7], block[:, 8]])
                surround = np.delete(block, 7, axis=1)  # Block(:, center1) = []
                surround = np.delete(surround, 8, axis=1)  # Block(:, center2) = [] on the shrunk block
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = np.std(center, ddof=1) / np.std(surround, ddof=1)
                if np.isnan(ratio):
                    ratio = 0.0
                beta = abs(block_sigma - ratio) / max(block_sigma, ratio)
                noisy = 1 if block_sigma > 2 * beta else 0
                dist_block_scores += impaired * (1 - block_var) + noisy * block_var
    return (dist_block_scores + 1) / (active_count + 1) * 100


@pytest.mark.parametrize(
    "seed, exponent, shape", [(0, 1.5, (128, 128)), (1, 1.0, (96, 80)), (2, 0.8, (77, 101))]
)
def test_matches_matlab_transcription_on_textures(seed, exponent, shape):
    texture = pink_noise(128, seed, exponent)[: shape[0], : shape[1]]
    gray8 = np.floor(texture * 255 + 0.5).astype(np.uint8)
    assert piqe(gray8) == pytest.approx(matlab_piqe_transcription(gray8), abs=1e-9)


def test_matches_matlab_transcription_on_real_images(shared_data):
    paths = sorted((shared_data / "ccmid").glob("*/*/*.jpg"))[:3]
    if not paths:
        pytest.skip("no CCMID images in the shared data")
    for path in paths:
        gray8 = np.asarray(Image.open(path).convert("L"))
        for image in (gray8, gray8[:201, :333]):
            assert piqe(image) == pytest.approx(matlab_piqe_transcription(image), abs=1e-9), path


def test_flat_image_has_no_active_block_and_scores_100():
    result = piqe_with_masks(np.full((64, 48), 0.3))
    assert result.score == 100.0
    assert not result.activity_mask.any()


def test_blocking_artefacts_raise_the_score():
    texture = pink_noise(128, seed=0)
    blocky = texture.reshape(16, 8, 16, 8).mean(axis=(1, 3)).repeat(8, axis=0).repeat(8, axis=1)
    clean, degraded = piqe(texture), piqe(blocky)
    assert degraded > clean + 30
    assert 0 <= clean <= 100 and 0 <= degraded <= 100
    assert piqe_with_masks(blocky).noticeable_artifacts_mask.mean() > 0.5


def test_gaussian_noise_raises_the_score():
    texture = pink_noise(128, seed=1)
    noisy = np.clip(texture + np.random.default_rng(7).normal(0, 0.05, texture.shape), 0, 1)
    clean, degraded = piqe(texture), piqe(noisy)
    assert degraded > clean + 20
    assert 0 <= degraded <= 100
    assert piqe_with_masks(noisy).noise_mask.any()


def test_masks_have_the_input_size_and_nest_in_the_activity_mask():
    texture = pink_noise(128, seed=2)[:70, :45]
    result = piqe_with_masks(texture)
    for mask in (result.activity_mask, result.noticeable_artifacts_mask, result.noise_mask):
        assert mask.shape == (70, 45) and mask.dtype == bool
    assert not (result.noticeable_artifacts_mask & ~result.activity_mask).any()
    assert not (result.noise_mask & ~result.activity_mask).any()


def test_rgb_uses_matlab_rgb2gray_and_float_equals_uint8():
    channels = np.stack([pink_noise(64, seed) for seed in (4, 5, 6)], axis=2)
    rgb = np.floor(channels * 255 + 0.5).astype(np.uint8)
    weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    gray8 = np.floor(rgb @ weights + 0.5).astype(np.uint8)
    assert piqe(rgb) == pytest.approx(piqe(gray8), abs=1e-12)
    assert piqe(rgb.astype(np.float64) / 255) == pytest.approx(piqe(rgb), abs=1e-12)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="NaN"):
        piqe(np.full((16, 16), np.nan))
    with pytest.raises(ValueError, match="rank"):
        piqe(np.zeros((16,)))
