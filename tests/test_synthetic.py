"""The synthetic nerve-fibre generator (ssp_keras.data.synthetic)."""

import json
import os
import pathlib

import numpy as np
import pytest

from ssp_keras.data import synthetic
from ssp_keras.data.io import list_images, read_image
from ssp_keras.errors import InputError


def block_medians(image, grid=8):
    """Medians of a grid x grid tiling: the background level per block, barely moved by fibres."""
    height, width = image.shape[:2]
    blocks = image[: height // grid * grid, : width // grid * grid, 0]
    blocks = blocks.reshape(grid, height // grid, grid, width // grid).transpose(0, 2, 1, 3)
    return np.median(blocks.reshape(grid * grid, -1), axis=1)


def non_uniformity(image):
    """Coefficient of variation of the 8x8 block medians (0 = perfectly even illumination)."""
    medians = block_medians(image)
    return medians.std() / medians.mean()


def test_pair_shapes_types_ranges():
    lq, hq, mask = synthetic.generate_pair(0, size=(96, 128))
    assert lq.shape == hq.shape == (96, 128, 1)
    assert lq.dtype == hq.dtype == np.float32 and mask.dtype == bool and mask.shape == (96, 128)
    for image in (lq, hq):
        assert image.min() >= 0.0 and image.max() <= 1.0
    rgb_lq, rgb_hq, _ = synthetic.generate_pair(0, size=64, channels=3)
    assert rgb_lq.shape == rgb_hq.shape == (64, 64, 3)
    assert np.array_equal(rgb_hq[..., 0], rgb_hq[..., 2])


def test_same_seed_same_images_different_seed_different():
    first = synthetic.generate_pair(3, size=64)
    again = synthetic.generate_pair(np.random.default_rng(3), size=64)
    other = synthetic.generate_pair(4, size=64)
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("seed", range(6))
def test_lq_illumination_is_less_uniform_than_hq(seed):
    lq, hq, _ = synthetic.generate_pair(seed, size=128)
    assert non_uniformity(lq) > 1.1 * non_uniformity(hq)
    assert lq.mean() < hq.mean()  # the field's brightest point is 1: LQ is darker overall


@pytest.mark.parametrize("seed", range(4))
def test_mask_marks_the_bright_fibres(seed):
    _, hq, mask = synthetic.generate_pair(seed, size=128)
    assert 0.01 < mask.mean() < 0.4
    inside, outside = hq[..., 0][mask], hq[..., 0][~mask]
    assert inside.mean() > outside.mean() + 0.2
    assert np.percentile(inside, 50) > np.percentile(outside, 95)


def test_degrade_parts():
    hq = np.full((64, 64, 1), 0.5, np.float32)
    same = synthetic.degrade(hq, 0, ramp_strength=0.0, blur_sigma=0.0, noise=0.0)
    np.testing.assert_allclose(same, hq, atol=1e-6)
    ramped = synthetic.degrade(hq, 0, ramp_strength=0.8, blur_sigma=0.0, noise=0.0)
    assert ramped.max() == pytest.approx(0.5, abs=1e-3) and ramped.min() < 0.3  # multiplicative
    noisy = synthetic.degrade(hq, 0, ramp_strength=0.0, blur_sigma=0.0, noise=0.1)
    assert 0.03 < noisy.std() < 0.07  # speckle scales with the signal: std ~ 0.5 * 0.1
    flat = synthetic.degrade(hq[..., 0], 0)
    assert flat.shape == (64, 64) and flat.dtype == np.float32


def test_illumination_field_is_smooth_with_maximum_one():
    field = synthetic.illumination_field(1, (64, 80), ramp_strength=0.6)
    assert field.shape == (64, 80) and field.max() == pytest.approx(1.0)
    assert field.min() < 0.8 and np.abs(np.diff(field, axis=1)).max() < 0.05


def test_generate_dataset_layout(tmp_path):
    root = str(tmp_path / "set")
    description = synthetic.generate_dataset(root, count=3, size=64, seed=0, test_count=2)
    names = {
        sub: [os.path.basename(path) for path in list_images(os.path.join(root, sub))]
        for sub in synthetic.SUBFOLDERS
    }
    assert len(names["trainA"]) == len(names["trainB"]) == 3
    assert names["testA"] == names["testB"] == names["masks"] == ["test_0000.png", "test_0001.png"]
    assert description["seed"] == 0 and os.path.isfile(os.path.join(root, "params.json"))
    mask = read_image(os.path.join(root, "masks", "test_0000.png"))
    assert set(np.unique(mask)) <= {0.0, 1.0} and mask.max() == 1.0
    # unpaired: trainB shows other scenes than trainA, even after undoing the illumination
    lq = read_image(os.path.join(root, "trainA", names["trainA"][0]))
    hq = read_image(os.path.join(root, "trainB", names["trainB"][0]))
    assert np.corrcoef(lq.ravel(), hq.ravel())[0, 1] < 0.5
    # the test pair is the same scene
    test_lq = read_image(os.path.join(root, "testA", "test_0000.png"))
    test_hq = read_image(os.path.join(root, "testB", "test_0000.png"))
    assert np.corrcoef(test_lq.ravel(), test_hq.ravel())[0, 1] > 0.6


def test_generate_dataset_paired_and_reproducible(tmp_path):
    first = str(tmp_path / "a")
    synthetic.generate_dataset(first, count=2, size=48, seed=5, unpaired=False, test_count=0)
    lq = read_image(os.path.join(first, "trainA", "syn_0000.png"))
    hq = read_image(os.path.join(first, "trainB", "syn_0000.png"))
    assert np.corrcoef(lq.ravel(), hq.ravel())[0, 1] > 0.6
    second = str(tmp_path / "b")
    arguments = ["--out", second, "--seed", "5", "--count", "2", "--test-count", "0", "--size", "48"]
    assert synthetic.main(arguments + ["--paired"]) == 0
    for sub in ("trainA", "trainB"):
        for name in ("syn_0000.png", "syn_0001.png"):
            one, two = (pathlib.Path(root, sub, name).read_bytes() for root in (first, second))
            assert one == two


def test_existing_set_needs_overwrite(tmp_path, capsys):
    root = str(tmp_path / "set")
    synthetic.generate_dataset(root, count=1, size=32, seed=0, test_count=1)
    with pytest.raises(InputError, match="--overwrite"):
        synthetic.generate_dataset(root, count=1, size=32, seed=1)
    assert synthetic.main(["--out", root, "--count", "1", "--size", "32"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    synthetic.generate_dataset(root, count=1, size=32, seed=1, test_count=0, overwrite=True)
    assert os.listdir(os.path.join(root, "testA")) == []  # the old set's images are gone


def test_bundled_synthetic_set_regenerates_identically(tmp_path):
    bundled = pathlib.Path(__file__).resolve().parents[1] / "data" / "synthetic"
    if not bundled.is_dir():
        pytest.skip("data/synthetic is not in this checkout")
    params = json.loads((bundled / "params.json").read_text())
    fresh = tmp_path / "synthetic"
    synthetic.generate_dataset(
        str(fresh), count=params["count"], size=tuple(params["size"]), seed=params["seed"],
        unpaired=params["unpaired"], test_count=params["test_count"], channels=params["channels"],
    )
    for sub in synthetic.SUBFOLDERS:
        names = sorted(path.name for path in (bundled / sub).iterdir())
        assert names == sorted(path.name for path in (fresh / sub).iterdir())
        for name in names:
            assert (bundled / sub / name).read_bytes() == (fresh / sub / name).read_bytes(), f"{sub}/{name}"


def test_training_crops_are_seeded_squares_of_scenes():
    from ssp_keras.data.synthetic import render_training_crop

    crops = [render_training_crop(np.random.default_rng(seed), 64, channels) for seed, channels in ((0, 1), (0, 1), (1, 3))]
    assert crops[0].shape == (64, 64, 1) and crops[2].shape == (64, 64, 3) and crops[0].dtype == np.float32
    np.testing.assert_array_equal(crops[0], crops[1])
    assert 0.0 <= crops[2].min() and crops[2].max() <= 1.0 and crops[0].std() > 0.05
    assert not np.array_equal(render_training_crop(np.random.default_rng(2), 64), crops[0])
