"""CS-Net fibre segmenter: shapes, attention, save/load, any-size inference, training, bad input."""

import json
import os

import keras
import numpy as np
import pytest

from ssp_keras.data.io import write_image
from ssp_keras.data.synthetic import render_scene
from ssp_keras.errors import InputError
from ssp_keras.evaluation.segmenter import (
    SEGMENTER_FILE,
    ChannelAffinity,
    CSNet,
    CropSampler,
    SpatialAffinity,
    load_labelled_folders,
    load_segmenter,
    mse_dice_loss,
    segment,
    train_segmenter,
)
from ssp_keras.metrics import segmentation_metrics

TINY = {"base_width": 4, "depth": 2}


def _random_images(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


@pytest.mark.parametrize("channels, height, width", [(1, 32, 48), (3, 16, 16)])
def test_output_is_one_probability_channel_of_the_input_size(channels, height, width):
    model = CSNet(channels=channels, **TINY)
    probabilities = keras.ops.convert_to_numpy(model(_random_images((2, height, width, channels))))
    assert probabilities.shape == (2, height, width, 1)
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    assert model.size_multiple == 4


def test_widths_follow_base_width_and_depth():
    model = CSNet(channels=1, base_width=8, depth=3)
    assert model.get_layer("encoder0_out").output.shape[-1] == 8
    assert model.get_layer("encoder3_out").output.shape[-1] == 64  # bottleneck: 8 * 2**3
    assert model.get_layer("attention_query_conv").output.shape[-1] == 64 // 8
    assert model.get_layer("up0").output.shape[-1] == 8


def test_attention_blocks_start_as_identity_and_mix_when_gamma_is_set():
    features = keras.ops.convert_to_tensor(_random_images((1, 4, 6, 8)))
    spatial, channel = SpatialAffinity(), ChannelAffinity()
    query = keras.ops.convert_to_tensor(_random_images((1, 4, 6, 2), seed=1))
    np.testing.assert_allclose(spatial([query, query, features, features]), features)
    np.testing.assert_allclose(channel(features), features)
    # With gamma = 1 and a constant query/key, the spatial block adds the mean of the values.
    spatial.gamma.assign([1.0])
    constant = keras.ops.zeros((1, 4, 6, 2))
    mixed = keras.ops.convert_to_numpy(spatial([constant, constant, features, features]))
    expected = keras.ops.convert_to_numpy(features) + keras.ops.convert_to_numpy(features).mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(mixed, expected, rtol=1e-5)


def test_constructor_validates():
    with pytest.raises(ValueError, match="channels"):
        CSNet(channels=2)
    with pytest.raises(ValueError, match="depth"):
        CSNet(depth=0)


def test_keras_round_trip_keeps_config_and_outputs(tmp_path):
    model = CSNet(channels=1, attention_reduction=2, name="seg", **TINY)
    # Non-zero attention weights, so the round trip covers the custom layers' variables too.
    model.get_layer("attention_spatial").gamma.assign([0.5])
    model.get_layer("attention_channel").gamma.assign([0.25])
    images = _random_images((1, 32, 32, 1))
    path = str(tmp_path / "seg.keras")
    model.save(path)
    loaded = load_segmenter(path)
    assert isinstance(loaded, CSNet)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(images), model(images), atol=1e-6)


def test_segment_pads_any_size_and_crops_back():
    model = CSNet(channels=1, **TINY)
    image = _random_images((37, 53))
    probabilities = segment(model, image)
    assert probabilities.shape == (37, 53) and probabilities.dtype == np.float32
    assert 0.0 <= probabilities.min() and probabilities.max() <= 1.0
    # On an exact multiple nothing is padded: the same as calling the model.
    exact = _random_images((32, 48, 1))
    np.testing.assert_allclose(segment(model, exact), keras.ops.convert_to_numpy(model(exact[None]))[0, ..., 0], atol=1e-6)
    # Colour input is reduced to the model's gray channel; tiles give the same shape.
    assert segment(model, _random_images((20, 24, 3))).shape == (20, 24)
    assert segment(model, _random_images((40, 72, 1)), tile_size=32).shape == (40, 72)
    with pytest.raises(InputError):
        segment(model, np.full((8, 8), np.nan, np.float32))


def test_mse_dice_loss_is_zero_for_a_perfect_map_and_larger_for_a_wrong_one():
    label = np.zeros((1, 8, 8, 1), np.float32)
    label[0, 2:5, 2:5] = 1.0
    perfect = float(keras.ops.convert_to_numpy(mse_dice_loss(label, label))[0])
    inverted = float(keras.ops.convert_to_numpy(mse_dice_loss(label, 1.0 - label))[0])
    assert perfect == pytest.approx(0.0, abs=1e-6)
    assert inverted > 1.5


def test_crop_sampler_keeps_image_and_label_aligned():
    image = np.zeros((20, 30, 1), np.float32)
    image[5, 7] = 1.0
    label = image[..., 0] > 0
    sampler = CropSampler([image], [label], crop_size=24, batch_size=8, seed=0)  # 20 rows: padded
    images, labels = sampler.sample()
    assert images.shape == (8, 24, 24, 1) and labels.shape == (8, 24, 24, 1)
    np.testing.assert_array_equal(images, labels)


@pytest.mark.slow
def test_training_on_synthetic_fibres_improves_dice(tmp_path):
    settings = dict(epochs=1, steps_per_epoch=40, image_size=64, batch_size=4, base_width=8, depth=2, learning_rate=3e-3,
                    synthetic_count=6, synthetic_size=128, seed=3)
    held_out, mask = render_scene(np.random.default_rng(12345), 128)
    keras.utils.set_random_seed(settings["seed"])  # the same initial weights train_segmenter starts from
    untrained = CSNet(channels=1, base_width=8, depth=2)
    dice_before = segmentation_metrics(segment(untrained, held_out), mask)["dice"]

    result = train_segmenter(None, None, str(tmp_path / "seg"), **settings)
    dice_after = segmentation_metrics(segment(result.model, held_out), mask)["dice"]
    assert dice_after > 0.5
    assert dice_after > np.nan_to_num(dice_before) + 0.2

    assert result.path == str(tmp_path / "seg" / SEGMENTER_FILE) and os.path.isfile(result.path)
    info = json.loads((tmp_path / "seg" / "segmenter.json").read_text())
    assert info["data"]["source"] == "synthetic" and len(info["history"]["loss"]) == 1
    assert not [name for name in os.listdir(tmp_path / "seg") if name.startswith(".tmp")]
    reloaded = load_segmenter(str(tmp_path / "seg"))
    np.testing.assert_allclose(segment(reloaded, held_out), segment(result.model, held_out), atol=1e-6)


@pytest.fixture
def labelled_folders(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    for index in range(2):
        image, mask = render_scene(np.random.default_rng(index), 64)
        write_image(str(images / f"scan_{index}.png"), image)
        write_image(str(labels / f"scan_{index}.png"), mask.astype(np.float32))
    return images, labels


def test_labelled_folders_are_matched_by_name(labelled_folders):
    images, labels = labelled_folders
    loaded_images, loaded_labels, paths = load_labelled_folders(str(images), str(labels), channels=1)
    assert [os.path.basename(path) for path in paths] == ["scan_0.png", "scan_1.png"]
    assert loaded_images[0].shape == (64, 64, 1) and loaded_labels[0].dtype == bool
    _, mask = render_scene(np.random.default_rng(0), 64)
    np.testing.assert_array_equal(loaded_labels[0], mask)


def test_bad_training_folders_name_the_culprit(labelled_folders, tmp_path):
    images, labels = labelled_folders
    out = str(tmp_path / "out")
    with pytest.raises(InputError, match="nowhere"):
        train_segmenter(str(tmp_path / "nowhere"), str(labels), out)
    with pytest.raises(InputError, match="both"):
        train_segmenter(str(images), None, out)
    write_image(str(labels / "orphan.png"), np.zeros((64, 64), np.float32))
    with pytest.raises(InputError, match="orphan.png"):
        train_segmenter(str(images), str(labels), out)
    os.remove(labels / "orphan.png")
    os.remove(labels / "scan_1.png")
    with pytest.raises(InputError, match="scan_1.png"):
        train_segmenter(str(images), str(labels), out)
    (labels / "scan_1.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="scan_1.png"):
        train_segmenter(str(images), str(labels), out)
    write_image(str(labels / "scan_1.png"), np.zeros((32, 64), np.float32))
    with pytest.raises(InputError, match="scan_1.png.*32x64"):
        train_segmenter(str(images), str(labels), out)
    with pytest.raises(InputError, match="input folder"):
        train_segmenter(str(images), str(labels), str(images / "seg"))
    assert not os.path.exists(out)


def test_load_segmenter_rejects_what_is_not_one(tmp_path):
    with pytest.raises(InputError, match="segmenter.keras"):
        load_segmenter(str(tmp_path))
    (tmp_path / "broken.keras").write_bytes(b"junk")
    with pytest.raises(InputError, match="broken.keras"):
        load_segmenter(str(tmp_path / "broken.keras"))
    with pytest.raises(InputError, match="missing"):
        load_segmenter(str(tmp_path / "missing"))


def test_training_options_hold_the_defaults_and_check_them():
    from ssp_keras.defaults import CSNET
    from ssp_keras.evaluation.segmenter import SegmenterTrainingOptions

    options = SegmenterTrainingOptions()
    assert options.network() == dict(CSNET)  # the network's defaults are CSNet's own
    assert (options.epochs, options.steps_per_epoch, options.batch_size, options.image_size) == (4, 50, 4, 128)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        SegmenterTrainingOptions(epochs=0)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth = 16"):
        SegmenterTrainingOptions(image_size=40)
    with pytest.raises(TypeError, match="nonsense"):
        train_segmenter(None, None, "unused", nonsense=1)
