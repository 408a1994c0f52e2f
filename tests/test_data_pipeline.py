"""The unpaired tf.data pipeline (ssp_keras.data.pipeline)."""

import itertools
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tensorflow as tf

from ssp_keras.config import DataConfig
from ssp_keras.data.io import read_image, write_image
from ssp_keras.data.pipeline import (
    decide_cache,
    make_eval_dataset,
    make_unpaired_dataset,
)
from ssp_keras.errors import InputError

CROP = 32
PLAIN = DataConfig(image_size=CROP, flip=False, brightness_jitter=0.0, contrast_jitter=0.0, lq_shading=0.0, cache=False)


def textured_files(folder, count, size=(48, 56), seed=0):
    """``count`` random-texture PNGs (so crops at different places differ)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = str(folder / f"img_{index:02d}.png")
        write_image(path, rng.random(size))
        paths.append(path)
    return paths


def constant_files(folder, count, size=(40, 40)):
    """File ``k`` is a constant image of value (k + 1) * 10 / 255: crops reveal which file it was."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = str(folder / f"const_{index:02d}.png")
        write_image(path, np.full(size, (index + 1) * 10 / 255.0))
        paths.append(path)
    return paths


def file_ids(batch):
    """Which constant file each image of a batch came from."""
    return [int(round(value * 255 / 10)) - 1 for value in np.asarray(batch)[:, 0, 0, 0]]


def first_batches(dataset, count):
    return [(lq.numpy(), hq.numpy()) for lq, hq in itertools.islice(dataset, count)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    return {"lq": textured_files(root / "lq", 6, seed=1), "hq": textured_files(root / "hq", 5, seed=2)}


def test_shapes_dtype_range(folders):
    config = DataConfig(image_size=CROP, channels=1)
    dataset = make_unpaired_dataset(folders["lq"], folders["hq"], config, batch_size=3, seed=0)
    assert dataset.element_spec[0].shape.as_list() == [3, CROP, CROP, 1]
    for lq, hq in itertools.islice(dataset, 3):
        for batch in (lq, hq):
            assert batch.dtype == tf.float32 and batch.shape == (3, CROP, CROP, 1)
            assert float(tf.reduce_min(batch)) >= 0.0 and float(tf.reduce_max(batch)) <= 1.0


def test_rgb_channels(folders):
    config = DataConfig(image_size=CROP, channels=3)
    lq, hq = next(iter(make_unpaired_dataset(folders["lq"], folders["hq"], config, 2, seed=0)))
    assert lq.shape == (2, CROP, CROP, 3) and hq.shape == (2, CROP, CROP, 3)


@pytest.mark.parametrize("cache", [True, False])
def test_same_seed_same_batches_different_seed_different(folders, cache):
    config = DataConfig(image_size=CROP, cache=cache)
    make = lambda seed: make_unpaired_dataset(folders["lq"], folders["hq"], config, 2, seed=seed)  # noqa: E731
    first, again, other = first_batches(make(7), 4), first_batches(make(7), 4), first_batches(make(8), 4)
    for (lq_a, hq_a), (lq_b, hq_b) in zip(first, again):
        assert np.array_equal(lq_a, lq_b) and np.array_equal(hq_a, hq_b)
    assert not np.array_equal(first[0][0], other[0][0])


def test_cache_on_and_off_give_the_same_data(folders):
    def batches(cache):
        config = DataConfig(image_size=CROP, cache=cache)
        return first_batches(make_unpaired_dataset(folders["lq"], folders["hq"], config, 2, seed=3), 3)

    cached, streamed = batches(True), batches(False)
    for (lq_a, hq_a), (lq_b, hq_b) in zip(cached, streamed):
        assert np.array_equal(lq_a, lq_b) and np.array_equal(hq_a, hq_b)


def test_streams_are_shuffled_independently_and_every_epoch(tmp_path):
    files = constant_files(tmp_path, 8)
    dataset = make_unpaired_dataset(files, files, PLAIN, batch_size=8, seed=0)
    (lq_1, hq_1), (lq_2, _) = first_batches(dataset, 2)
    assert sorted(file_ids(lq_1)) == list(range(8)) and sorted(file_ids(hq_1)) == list(range(8))
    assert file_ids(lq_1) != file_ids(hq_1)  # same files, own order per stream
    assert file_ids(lq_1) != file_ids(lq_2)  # reshuffled on every pass


def test_shards_see_disjoint_files(tmp_path):
    files = constant_files(tmp_path, 6)
    seen = []
    for index in range(2):
        dataset = make_unpaired_dataset(files, files, PLAIN, 3, seed=0, repeat=False, shard=(2, index))
        ids = {file_id for lq, _ in dataset for file_id in file_ids(lq)}
        seen.append(ids)
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == set(range(6))
    options = dataset.options().experimental_distribute.auto_shard_policy
    assert options == tf.data.experimental.AutoShardPolicy.OFF


def test_bad_shards_and_batches(tmp_path):
    files = constant_files(tmp_path, 3)
    with pytest.raises(InputError, match="LQ has 3 images, fewer than the 4"):
        make_unpaired_dataset(files, files, PLAIN, 1, seed=0, shard=(4, 3))
    with pytest.raises(ValueError, match="shard"):
        make_unpaired_dataset(files, files, PLAIN, 1, seed=0, shard=(2, 2))
    with pytest.raises(ValueError, match="batch_size"):
        make_unpaired_dataset(files, files, PLAIN, 0, seed=0)
    with pytest.raises(InputError, match="no HQ images"):
        make_unpaired_dataset(files, [], PLAIN, 1, seed=0)
    with pytest.raises(InputError, match="only 3 LQ images"):
        make_unpaired_dataset(files, files, PLAIN, 4, seed=0, repeat=False)


def test_small_images_are_resized_up_keeping_aspect(tmp_path):
    # 16 x 24: the short side is resized to 32 (so 32 x 48), then cropped to 32 x 32
    rows = np.linspace(0.0, 1.0, 16)[:, None] * np.ones((1, 24))
    small = str(tmp_path / "small.png")
    write_image(small, rows)
    lq, _ = next(iter(make_unpaired_dataset([small], [small], PLAIN, batch_size=1, seed=0)))
    assert lq.shape == (1, CROP, CROP, 1)
    column = lq.numpy()[0, :, 0, 0]
    assert column[0] < 0.05 and column[-1] > 0.95  # the whole height is there: no crop along it
    assert np.all(np.diff(column) >= -1e-6)


def test_augmentation_flips_and_jitters(tmp_path):
    # a ramp: flipped crops run the other way, jitter shifts the mean
    ramp = np.linspace(0.1, 0.9, CROP)[None, :] * np.ones((CROP, 1))
    path = str(tmp_path / "ramp.png")
    write_image(path, ramp)
    config = DataConfig(image_size=CROP, flip=True, brightness_jitter=0.1, contrast_jitter=0.2)
    (lq, _), = first_batches(make_unpaired_dataset([path], [path], config, batch_size=16, seed=0), 1)
    directions = np.sign(lq[:, CROP // 2, -1, 0] - lq[:, CROP // 2, 0, 0])
    assert {-1.0, 1.0} <= set(directions)
    assert np.std(lq.mean(axis=(1, 2, 3))) > 0.005
    assert lq.min() >= 0.0 and lq.max() <= 1.0
    plain = first_batches(make_unpaired_dataset([path], [path], config, 16, seed=0, augment=False), 1)[0][0]
    np.testing.assert_allclose(plain[:, 0, :, 0], np.broadcast_to(plain[0, 0, :, 0], (16, CROP)))


def test_float32_output_under_mixed_precision(folders):
    import keras

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        dataset = make_unpaired_dataset(folders["lq"], folders["hq"], DataConfig(image_size=CROP), 2, seed=0)
        lq, hq = next(iter(dataset))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert lq.dtype == tf.float32 and hq.dtype == tf.float32


def test_cache_decision_from_estimated_size(tmp_path, folders):
    big = str(tmp_path / "big.png")
    write_image(big, np.zeros((1024, 1024)))  # 2 MB decoded (uint16), a tiny file
    config = DataConfig(image_size=CROP, cache=None, cache_limit_mb=1)
    assert decide_cache([folders["lq"], [big]], config) == [True, False]
    assert decide_cache([[big]], DataConfig(image_size=CROP, cache=True)) == [True]
    assert decide_cache([folders["lq"]], DataConfig(image_size=CROP, cache=False)) == [False]


def test_eval_dataset_yields_whole_images_in_order(tmp_path):
    files = constant_files(tmp_path, 2, size=(20, 30))
    images = list(make_eval_dataset(files, channels=3))
    assert [image.shape for image in images] == [(20, 30, 3), (20, 30, 3)]
    assert images[0].dtype == tf.float32
    np.testing.assert_array_equal(images[1].numpy(), read_image(files[1], channels=3))
    paths = [path.numpy().decode() for path, _ in make_eval_dataset(files, channels=1, with_paths=True)]
    assert paths == files


def test_distribute_dataset_over_two_replicas(folders):
    """experimental_distribute_dataset splits the global batch over replicas (fresh process:
    logical CPU devices must be set up before TensorFlow starts)."""
    script = textwrap.dedent(
        f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from ssp_keras.config import DataConfig
        from ssp_keras.data.pipeline import make_unpaired_dataset
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        config = DataConfig(image_size=32)
        dataset = make_unpaired_dataset({folders['lq']!r}, {folders['hq']!r}, config, 4, seed=0)
        distributed = iter(strategy.experimental_distribute_dataset(dataset))
        @tf.function
        def step(batch):
            return strategy.run(lambda pair: tf.shape(pair[0])[0] + tf.shape(pair[1])[0], args=(batch,))
        for _ in range(2):
            sizes = strategy.experimental_local_results(step(next(distributed)))
            print("replica batches", [int(size) for size in sizes])
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("replica batches [4, 4]") == 2  # 2 LQ + 2 HQ on each replica


def test_lq_shading_darkens_lq_crops_smoothly_and_leaves_hq_alone(folders):
    import dataclasses

    shaded = dataclasses.replace(PLAIN, lq_shading=1.0)
    plain_lq, plain_hq = next(iter(make_unpaired_dataset(folders["lq"], folders["hq"], PLAIN, 2, seed=3)))
    lq, hq = next(iter(make_unpaired_dataset(folders["lq"], folders["hq"], shaded, 2, seed=3)))
    np.testing.assert_array_equal(hq.numpy(), plain_hq.numpy())  # HQ targets are never shaded
    ratio = lq.numpy() / np.maximum(plain_lq.numpy(), 1e-3)
    valid = plain_lq.numpy() > 0.05
    assert np.all(ratio[valid] <= 1.0 + 1e-4)  # a field with maximum 1 only darkens
    assert ratio[valid].min() < 0.9  # and it does darken somewhere


def test_random_shading_fields_are_smooth_and_seeded():
    from ssp_keras.data.pipeline import random_shading

    ones = tf.ones([3, 64, 64, 1])
    fields = random_shading(ones, 0.8, tf.constant([5, 7], tf.int64)).numpy()
    again = random_shading(ones, 0.8, tf.constant([5, 7], tf.int64)).numpy()
    np.testing.assert_array_equal(fields, again)
    assert np.allclose(fields.max(axis=(1, 2, 3)), 1.0)
    assert np.abs(np.diff(fields, axis=1)).max() < 0.05 and np.abs(np.diff(fields, axis=2)).max() < 0.05
    assert not np.allclose(fields[0], fields[1])  # each image its own field


def test_lq_noise_perturbs_lq_crops_only_and_is_seeded(folders):
    import dataclasses

    noisy = dataclasses.replace(PLAIN, lq_noise=0.05)
    plain_lq, plain_hq = next(iter(make_unpaired_dataset(folders["lq"], folders["hq"], PLAIN, 2, seed=3)))
    lq, hq = next(iter(make_unpaired_dataset(folders["lq"], folders["hq"], noisy, 2, seed=3)))
    again, _ = next(iter(make_unpaired_dataset(folders["lq"], folders["hq"], noisy, 2, seed=3)))
    np.testing.assert_array_equal(hq.numpy(), plain_hq.numpy())  # HQ targets stay clean
    np.testing.assert_array_equal(lq.numpy(), again.numpy())
    difference = lq.numpy() - plain_lq.numpy()
    assert 0.0 < np.abs(difference).mean() < 0.05
    assert abs(difference.mean()) < 0.005  # zero-mean noise, not a brightness change


def test_random_noise_levels_follow_the_signal_and_the_strength():
    from ssp_keras.data.pipeline import random_noise

    seed = tf.constant([5, 7], tf.int64)
    grey = random_noise(tf.fill([64, 32, 32, 1], 0.5), 0.04, seed).numpy()
    dark = random_noise(tf.fill([64, 32, 32, 1], 0.125), 0.04, seed).numpy()
    levels = (grey - 0.5).std(axis=(1, 2, 3))
    assert levels.max() <= 0.04 * 1.15 and levels.min() < 0.01  # sigma_i ~ U(0, strength) at mid-grey
    assert 0.25 < levels.mean() / 0.04 < 0.75
    # Poisson-like: a quarter of the signal has half the noise (same draws, same seed).
    np.testing.assert_allclose((dark - 0.125).std(axis=(1, 2, 3)), levels * 0.5, rtol=0.02, atol=1e-4)
    assert np.all(random_noise(tf.zeros([2, 8, 8, 1]), 0.04, seed).numpy() == 0.0)


def test_synthetic_scenes_are_a_third_stream_of_shaded_and_clean_pairs(folders):
    """``synthetic_scenes``: elements ``(lq, hq, (shaded, clean))``; clean synthetic crops rendered
    on the fly, shaded as the LQ crops are (a smooth field of maximum 1), the same for the same
    seed and other scenes for another; off, elements stay ``(lq, hq)``."""
    config = DataConfig(image_size=CROP, lq_shading=0.8)
    make = lambda seed: make_unpaired_dataset(folders["lq"], folders["hq"], config, 2, seed=seed,  # noqa: E731
                                              synthetic_scenes=True)
    assert len(make_unpaired_dataset(folders["lq"], folders["hq"], config, 2, seed=0).element_spec) == 2
    elements = list(itertools.islice(make(4), 3))
    for lq, _, (shaded, clean) in elements:
        for batch in (shaded, clean):
            assert batch.dtype == tf.float32 and batch.shape == lq.shape
        shaded, clean = shaded.numpy(), clean.numpy()
        assert 0.0 <= clean.min() and clean.max() <= 1.0 and clean.std() > 0.05  # a scene, not a blank
        assert np.all(shaded <= clean + 1e-6) and np.abs(shaded - clean).mean() > 0.005  # darkened, never brightened
    assert not np.array_equal(elements[0][2][1], elements[1][2][1])  # new scenes every batch
    again, other = next(iter(make(4)))[2][1].numpy(), next(iter(make(5)))[2][1].numpy()
    np.testing.assert_array_equal(again, elements[0][2][1])
    assert not np.array_equal(other, again)
    unshaded = next(iter(make_unpaired_dataset(folders["lq"], folders["hq"], PLAIN, 2, seed=4, synthetic_scenes=True)))
    np.testing.assert_array_equal(unshaded[2][0], unshaded[2][1])  # data.lq_shading 0: s~ comes from the model alone
