"""Quality measures of benchmarks/quality.py (ssp_keras.evaluation.quality) and the script end to end."""

import importlib.util
import json
import math
import pathlib

import numpy as np
import pytest

from ssp_keras.errors import InputError
from ssp_keras.evaluation import quality

REPOSITORY = pathlib.Path(__file__).resolve().parents[1]


def checkerboard(size, low=0.4, high=0.6):
    """Pixel checkerboard: every even-sided block has the same mean (perfectly even illumination)."""
    rows, columns = np.indices((size, size))
    return np.where((rows + columns) % 2 == 0, low, high).astype(np.float32)


# ------------------------------------------------------------------------------ non-uniformity
def test_non_uniformity_of_a_flat_image_is_zero():
    assert quality.non_uniformity(np.full((96, 96), 0.3, np.float32), block=16) == 0.0
    assert quality.non_uniformity(checkerboard(96), block=16) == pytest.approx(0.0, abs=1e-12)


def test_non_uniformity_of_a_ramp_is_the_hand_computed_value():
    # Columns 0.1 .. 0.8 on an 8x8 image, 4x4 blocks: block means 0.25 (left) and 0.65 (right),
    # their std 0.2, the image mean 0.45 -> 0.2 / 0.45.
    ramp = np.tile(0.1 * np.arange(1, 9), (8, 1))
    assert quality.non_uniformity(ramp, block=4) == pytest.approx(0.2 / 0.45, rel=1e-12)
    np.testing.assert_allclose(quality.block_means(ramp, 4), [[0.25, 0.65], [0.25, 0.65]])
    # [H, W, 1] and [H, W, 3] (gray) give the same.
    assert quality.non_uniformity(ramp[..., None], 4) == pytest.approx(0.2 / 0.45)
    assert quality.non_uniformity(np.repeat(ramp[..., None], 3, axis=2), 4) == pytest.approx(0.2 / 0.45)


def test_block_grid_is_centred_and_too_small_images_are_refused():
    image = np.zeros((10, 10))
    image[1:9, 1:9] = 1.0  # exactly the centred 2x2 grid of 4x4 blocks
    np.testing.assert_array_equal(quality.block_means(image, 4), np.ones((2, 2)))
    with pytest.raises(InputError, match="smaller than one 48x48 block"):
        quality.non_uniformity(np.ones((40, 40)), block=48)
    assert math.isnan(quality.non_uniformity(np.zeros((16, 16)), block=8))


# ------------------------------------------------------------------------------ border band
def test_border_band_of_a_bright_ring_is_the_known_difference():
    image = np.full((64, 64), 0.2, np.float32)
    image[:6, :] = image[-6:, :] = image[:, :6] = image[:, -6:] = 0.7  # 6-px bright ring
    image[18:-18, 18:-18] = 0.9  # beyond the 12-px comparison ring: must not count
    assert quality.border_band(image) == pytest.approx(0.5, abs=1e-6)
    assert quality.border_band(1.0 - image) == pytest.approx(-0.5, abs=1e-6)
    assert quality.border_band(np.full((64, 64), 0.4)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(InputError, match="too small"):
        quality.border_band(np.zeros((30, 30)))


# ------------------------------------------------------------------------------ planted vignette
def test_planted_vignette_follows_its_formula():
    vignette = quality.planted_vignette((100, 200))
    assert vignette.shape == (100, 200) and vignette.dtype == np.float32
    assert vignette.max() <= 1.0 and vignette.min() == pytest.approx(0.4)  # saturates at 1 - 0.6
    # Brightest near (0.3 H, 0.65 W) = (30, 130); one hand-checked pixel.
    assert np.unravel_index(np.argmax(vignette), vignette.shape) in {(29, 129), (29, 130), (30, 129), (30, 130)}
    radius = 0.75 * math.hypot(100, 200) / 2
    r2 = (60.5 - 30) ** 2 + (10.5 - 130) ** 2
    assert vignette[60, 10] == pytest.approx(1 - 0.6 * min(r2 / radius**2, 1), rel=1e-6)


def test_shading_removed_is_100_percent_for_a_perfect_corrector_and_0_for_identity():
    image = checkerboard(96)
    vignette = quality.planted_vignette(image.shape)
    vignetted = quality.apply_vignette(image, vignette)
    perfect = vignetted / vignette
    assert quality.shading_removed(perfect, vignetted, block=16) == pytest.approx(1.0, abs=1e-6)
    assert quality.shading_removed(vignetted, vignetted, block=16) == 0.0
    worse = quality.apply_vignette(vignetted, vignette)
    assert quality.shading_removed(worse, vignetted, block=16) < 0.0
    # [H, W, 1] images broadcast the vignette over the channel.
    assert quality.apply_vignette(image[..., None], vignette).shape == (96, 96, 1)


# ------------------------------------------------------------------------------ fine detail
def test_detail_correlation():
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    assert quality.detail_correlation(image, image) == pytest.approx(1.0, abs=1e-12)
    assert quality.detail_correlation(1.0 - image, image) == pytest.approx(-1.0, abs=1e-12)
    # A smooth brightness change and a gain leave the fine detail (nearly) untouched.
    smooth = 0.5 * image + 0.3 * np.linspace(0, 1, 64)[None, :]
    assert quality.detail_correlation(smooth, image) > 0.99
    assert math.isnan(quality.detail_correlation(np.full((64, 64), 0.5), image))


# ------------------------------------------------------------------------------ PSNR / SSIM
def test_psnr_of_known_pairs():
    zeros = np.zeros((8, 8, 1))
    assert quality.psnr(zeros + 0.1, zeros) == pytest.approx(20.0)  # MSE 0.01
    half = zeros.copy()
    half[:4] = 0.5  # MSE = 0.125
    assert quality.psnr(half, zeros) == pytest.approx(10 * math.log10(1 / 0.125))
    assert quality.psnr(zeros + 0.1, zeros, data_range=255.0) == pytest.approx(20 + 20 * math.log10(255))
    assert quality.psnr(zeros, zeros) == math.inf
    with pytest.raises(InputError, match="shape"):
        quality.psnr(zeros, np.zeros((8, 9, 1)))


def test_ssim_of_identical_images_is_one():
    image = np.random.default_rng(1).random((40, 48, 1))
    assert quality.ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_two_constants_is_the_luminance_term():
    # No variance anywhere: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01)^2; contrast term C2 / C2.
    # a = 0.5, b = 0.25: (0.25 + 0.0001) / (0.3125 + 0.0001) = 0.2501 / 0.3126, by hand.
    a, b = np.full((20, 20), 0.5), np.full((20, 20), 0.25)
    assert quality.ssim(a, b) == pytest.approx(0.2501 / 0.3126, rel=1e-9)
    ssim_map = quality.ssim_map(a, b)
    assert ssim_map.shape == (10, 10, 1)  # the valid part of the 11x11 window's sweep
    np.testing.assert_allclose(ssim_map, 0.2501 / 0.3126, rtol=1e-9)
    with pytest.raises(InputError, match="11x11"):
        quality.ssim(np.zeros((10, 10)), np.zeros((10, 10)))


def test_ssim_matches_tensorflow():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    clean = rng.random((48, 40, 1)).astype(np.float32)
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    expected = float(tf.image.ssim(clean, noisy, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03))
    assert quality.ssim(noisy, clean) == pytest.approx(expected, abs=1e-5)
    assert 0.5 < expected < 0.99


# ------------------------------------------------------------------------------ summaries, targets
def test_summarize_ignores_nan():
    assert quality.summarize([1.0, 3.0, float("nan")]) == {"mean": 2.0, "std": 1.0, "count": 2}
    empty = quality.summarize([float("nan")])
    assert empty["count"] == 0 and math.isnan(empty["mean"])


def _summary(**metrics):
    return {key: {"mean": value, "std": 0.0, "count": 1} for key, value in metrics.items()}


def test_target_checks():
    real = {
        "original": _summary(border_band=0.02, niqe=4.0, piqe=20.0, average_gradient=6.0),
        "good": _summary(shading_removed=0.8, nonuniformity_ratio=0.4, border_band=0.025, detail_correlation=0.97,
                         niqe=3.9, piqe=20.0, average_gradient=6.5),
        "bad": _summary(shading_removed=0.5, nonuniformity_ratio=0.6, border_band=0.05, detail_correlation=0.9,
                        niqe=4.1, piqe=25.0, average_gradient=5.0),
    }
    synthetic = {"original": _summary(psnr=20.0), "clahe": _summary(psnr=22.0), "flat_field": _summary(psnr=24.0),
                 "good": _summary(psnr=24.5), "bad": _summary(psnr=float("nan"))}
    good = quality.target_checks(real, synthetic, "good", ["clahe", "flat_field"])
    assert len(good) == 9 and all(check["passed"] for check in good), good
    bad = quality.target_checks(real, synthetic, "bad", ["clahe", "flat_field"])
    assert not any(check["passed"] for check in bad), bad
    by_name = {check["name"]: check for check in good}
    assert by_name["border band"]["threshold"] == pytest.approx(0.03)
    assert by_name["synthetic PSNR vs degraded"]["threshold"] == 23.0
    assert by_name["synthetic PSNR vs baselines"]["threshold"] == 24.0


# ------------------------------------------------------------------------------ the script
def load_script():
    spec = importlib.util.spec_from_file_location("quality_benchmark", REPOSITORY / "benchmarks" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def identity_model(path):
    import keras

    inputs = keras.Input((None, None, 1))
    keras.Model(inputs, keras.layers.Identity()(inputs), name="identity").save(path)
    return str(path)


def test_main_runs_end_to_end(tmp_path, capsys):
    from ssp_keras.data.io import write_image

    model = identity_model(tmp_path / "identity.keras")
    frames = tmp_path / "frames"
    rows, columns = np.indices((96, 96))
    frame = 0.35 + 0.15 * np.sin(rows / 3.0) * np.cos(columns / 5.0) + 0.1 * np.random.default_rng(3).random((96, 96))
    write_image(str(frames / "frame.png"), (frame * quality.planted_vignette((96, 96)))[..., None], bit_depth=8)
    report = tmp_path / "out" / "quality.json"

    script = load_script()
    code = script.main(["--model", model, "--images", str(frames), "--synthetic-count", "2", "--size", "64",
                        "--segmentation-count", "0", "--json", str(report), "--figure", str(tmp_path / "fig.png")])
    assert code == 0
    out = capsys.readouterr().out
    assert "CPU:" in out and "--synthetic-count 2" in out
    header = "| metric"
    assert out.count(header) == 3  # one table per part
    for method in ("original", "clahe", "dcp", "flat_field", "flat_field_nlm", "identity"):
        assert f" {method} " in out.split(header)[1].splitlines()[0]
    assert "PSNR dB" in out and "SSIM" in out and "shading removed" in out and "NIQE" in out
    assert "Targets, identity:" in out
    # The identity "enhancer" removes no planted shading and gains no PSNR; it equals the original.
    assert "- FAIL  planted shading removed: 0.0%" in out
    assert "- FAIL  synthetic PSNR vs degraded" in out
    assert "- PASS  NIQE" in out and "- PASS  AvG" in out
    # ...and restores nothing: no better than the degraded frame, below the classical restorer.
    assert "- FAIL  restored detail PSNR vs degraded" in out and "- FAIL  restored SSIM vs baselines" in out
    assert "Dice lost" not in out  # --segmentation-count 0: no segmentation check
    from ssp_keras.data.io import read_image

    assert read_image(str(tmp_path / "fig.png"), 3).shape[1] > 6 * 100  # plain, degraded, 5 methods

    data = json.loads(report.read_text())
    assert data["benchmark"] == "quality" and data["methods"][-1] == "identity"
    assert data["synthetic"]["summary"]["identity"]["psnr"] == data["synthetic"]["summary"]["original"]["psnr"]
    assert len(data["synthetic"]["per_image"]["dcp"]["ssim"]) == 2
    assert len(data["real"]["per_image"]["flat_field"]["niqe"]) == 1
    assert data["real"]["summary"]["identity"]["nonuniformity_ratio"]["mean"] == pytest.approx(1.0)
    assert data["real"]["summary"]["flat_field"]["shading_removed"]["mean"] > 0.3
    assert len(data["targets"]["identity"]) == 13 and "environment" in data
    restoration = data["restoration"]["summary"]
    assert restoration["identity"]["detail_psnr"] == restoration["original"]["detail_psnr"]
    assert data["segmentation"] == {}


def test_main_names_a_missing_image_folder(tmp_path, capsys):
    model = identity_model(tmp_path / "identity.keras")
    script = load_script()
    assert script.main(["--model", model, "--images", str(tmp_path / "nowhere"), "--synthetic-count", "0"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_exposure_matched_scales_to_the_reference_mean_and_clips():
    image = np.full((8, 8), 0.4, np.float32)
    image[0, 0] = 0.9
    reference = np.full((8, 8), 0.2, np.float32)
    matched = quality.exposure_matched(image, reference)
    assert matched.dtype == np.float32
    assert matched.mean() == pytest.approx(0.2, abs=1e-6)  # no clipping needed here
    np.testing.assert_allclose(matched / image, matched[1, 1] / image[1, 1], rtol=1e-6)  # one global gain
    brighter = quality.exposure_matched(image, np.full((8, 8), 0.8, np.float32))
    assert brighter.max() == 1.0  # 0.9 * 1.9 clipped
    np.testing.assert_array_equal(quality.exposure_matched(np.zeros((4, 4)), reference), np.zeros((4, 4)))


# ------------------------------------------------------------------------------ restoration
def test_detail_psnr_ignores_gain_and_offset_and_counts_the_known_error():
    rows, columns = np.indices((64, 64))
    checker = np.where((rows + columns) % 2 == 0, 1.0, -1.0)  # 1-px patterns pass the sigma-10 high-pass
    stripes = np.where((rows // 2 + columns) % 2 == 0, 1.0, -1.0) * np.where(rows % 2 == 0, 1.0, -1.0)
    assert abs(float((checker * stripes).mean())) < 1e-12  # orthogonal patterns
    reference = 0.5 + 0.1 * checker
    assert quality.detail_psnr(2.0 * reference - 0.3, reference) > 300  # gain and offset are not errors (rounding only)
    # output detail 0.1 c + 0.05 s: gain 0.01 / 0.0125 = 0.8, error 0.04 s - 0.02 c, MSE 0.002 -> 26.99 dB
    output = 0.5 + 0.1 * checker + 0.05 * stripes
    assert quality.detail_psnr(output, reference) == pytest.approx(10 * math.log10(1 / 0.002), abs=0.05)


def test_matched_ssim_takes_out_smooth_illumination_but_not_noise():
    reference = (0.4 + 0.3 * checkerboard(96, 0.0, 1.0)).astype(np.float64)
    shaded = reference * quality.planted_vignette((96, 96))
    assert quality.ssim(shaded, reference) < 0.9
    assert quality.matched_ssim(shaded, reference) > 0.99
    noisy = reference + 0.1 * np.random.default_rng(0).standard_normal(reference.shape)
    assert quality.matched_ssim(noisy, reference) == pytest.approx(quality.ssim(noisy, reference), abs=0.02)
    assert quality.matched_ssim(noisy, reference) < 0.9


def test_illumination_matched_undoes_a_smooth_gain_exactly():
    from ssp_keras.metrics.full_reference import illumination_matched

    reference = (0.4 + 0.3 * checkerboard(96, 0.0, 1.0)).astype(np.float64)
    np.testing.assert_allclose(illumination_matched(0.5 * reference, reference), reference, rtol=1e-9)  # constant gain: exact
    shaded = reference * quality.planted_vignette((96, 96))
    assert np.abs(illumination_matched(shaded, reference) - reference).mean() < 0.2 * np.abs(shaded - reference).mean()  # 0.13


def test_planted_degradation_is_seeded_and_in_its_ranges():
    image = np.full((64, 64), 0.5, np.float32)
    first, params = quality.planted_degradation(image, np.random.default_rng(1))
    again, _ = quality.planted_degradation(image, np.random.default_rng(1))
    np.testing.assert_array_equal(first, again)
    assert first.shape == image.shape and first.dtype == np.float32 and 0.0 <= first.min() and first.max() <= 1.0
    for key, (low, high) in (("blur_sigma", quality.PLANTED_BLUR_SIGMA), ("contrast", quality.PLANTED_CONTRAST),
                             ("shot_noise", quality.PLANTED_SHOT_NOISE), ("shading", quality.PLANTED_SHADING)):
        assert low <= params[key] <= high
    sharp = np.tile(checkerboard(64, 0.3, 0.7)[..., None], (1, 1, 1))
    blurred, params = quality.planted_degradation(sharp, np.random.default_rng(2))
    assert blurred.shape == sharp.shape
    # Blur sigma >= 1.2 px all but erases a 1-px checkerboard; what is left of it is noise and shading.
    assert np.std(quality.fine_detail(blurred)) < 0.5 * np.std(quality.fine_detail(sharp))


def test_share_given_back():
    assert quality.share_given_back(0.9, 0.5, 0.7) == pytest.approx(0.5)
    assert quality.share_given_back(0.9, 0.5, 0.4) == pytest.approx(-0.25)
    assert math.isnan(quality.share_given_back(0.5, 0.5, 0.6))


def test_restoration_checks_compare_with_the_degraded_input_and_the_best_baseline():
    summary = lambda value: {"mean": value, "std": 0.0, "count": 1}  # noqa: E731
    restoration = {name: {"detail_psnr": summary(psnr), "matched_ssim": summary(ssim)}
                   for name, psnr, ssim in (("original", 25.0, 0.50), ("nlm", 26.0, 0.55), ("model", 26.5, 0.52))}
    segmentation = {"model": {"dice_given_back": summary(0.6)}}
    checks = {check["name"]: check for check in quality.restoration_checks(restoration, segmentation, "model", ["nlm"])}
    assert checks["restored detail PSNR vs baselines"]["passed"] and checks["restored detail PSNR vs baselines"]["threshold"] == 26.0
    assert checks["restored SSIM vs degraded"]["passed"] and not checks["restored SSIM vs baselines"]["passed"]
    assert checks["Dice lost to the degradation given back"]["passed"]
    assert math.isnan(checks["Dice lost to the degradation given back"]["standard_error"])  # one scene
    assert len(quality.restoration_checks({}, {}, "model", ["nlm"])) == 0


def test_standard_error_of_a_summarised_mean():
    # Shares 0.2, 0.4, 0.6, 0.8: sample std sqrt(1/15) = 0.2582, over sqrt(4) = 0.1291.
    summary = quality.summarize([0.2, 0.4, 0.6, 0.8])
    assert quality.standard_error(summary) == pytest.approx(np.sqrt(1 / 15) / 2)
    assert math.isnan(quality.standard_error(quality.summarize([0.5])))


def test_background_grain_is_the_relative_grain_away_from_the_fibres():
    """Alternate columns at L (1 + e) and L (1 - e): a sigma-3 blur leaves their mean L (period 2
    px is far above its cut-off), so the relative fine detail is +-e and its std e, whatever L.
    Borders are reflected, which breaks the alternation at the edges: a 3% tolerance."""
    from ssp_keras.metrics.full_reference import background_grain

    alternating = np.where(np.arange(128) % 2 == 0, 1.0, -1.0)[None, :] * np.ones((128, 1))
    no_fibres = np.zeros((128, 128))
    for level in (0.1, 0.6):
        assert background_grain(level * (1 + 0.05 * alternating), no_fibres) == pytest.approx(0.05, rel=0.03)
    # Grain on the fibres and within the 5-pixel margin is not background grain (what is left is
    # the blur's reach beyond the margin: measured 0.010, against 0.25 counting every pixel).
    fibre = no_fibres.copy()
    fibre[:, 60:68] = 1.0
    image = np.full((128, 128), 0.3)
    image[:, 55:73] += 0.2 * alternating[:, 55:73]
    assert background_grain(image, fibre) < 0.05 * background_grain(image, no_fibres)
    with pytest.raises(InputError, match="no background"):
        background_grain(image, np.ones((128, 128)))


def test_the_dice_check_prints_its_standard_error(capsys):
    summary = quality.summarize([0.2, 0.4, 0.6, 0.8])
    checks = quality.restoration_checks({}, {"model": {"dice_given_back": summary}}, "model", [])
    load_script().print_checks("model", checks)
    out = capsys.readouterr().out
    assert "- PASS  Dice lost to the degradation given back: 50.0% (target >= 50%), standard error 12.9 points" in out
