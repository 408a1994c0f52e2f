import keras
import numpy as np
import pytest

from ssp_keras.config import preset
from ssp_keras.networks import PatchDiscriminator, SSPGenerator, build_discriminator, build_generator, load_encoder_weights
from tiny import TINY_GENERATOR as TINY
from tiny import randomised


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("height, width", [(32, 32), (64, 96), (160, 64)])
def test_generator_keeps_shape_and_range(channels, height, width):
    generator = SSPGenerator(channels=channels, **TINY)
    images = np.random.default_rng(0).random((2, height, width, channels)).astype("float32")
    out = keras.ops.convert_to_numpy(generator(images))
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_generator_skip_resolutions_follow_the_spec():
    generator = SSPGenerator(channels=1, **TINY)
    features = generator.encoder(np.zeros((1, 64, 64, 1), "float32"))
    assert [f.shape[1] for f in features] == [32, 16, 8, 4, 2]  # 1/2, 1/4, 1/8, 1/16 and the 1/32 bottleneck
    assert generator.get_layer("encoder").get_layer("stem_down_conv").strides == (2, 2)  # replaces max-pool
    assert not any(isinstance(layer, keras.layers.MaxPooling2D) for layer in generator.encoder.layers)


def test_paper_generator_is_resnet50_shaped():
    generator = build_generator(preset("paper"))
    bottleneck_blocks = {layer.name.rsplit("_", 1)[0] for layer in generator.encoder.layers if layer.name.endswith("_add")}
    assert len(bottleneck_blocks) == 3 + 4 + 6 + 3
    assert generator.encoder.outputs[-1].shape[-1] == 2048
    # keras.applications' ResNet-50 without head: 23,587,712 parameters; ours trades conv biases and
    # two input channels for the stride-2 conv that replaces the max-pool: within 1%.
    assert abs(generator.encoder.count_params() - 23_587_712) < 0.01 * 23_587_712


def test_discriminator_is_the_paper_patchgan():
    discriminator = build_discriminator(preset("paper"))
    convs = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.kernel_size for c in convs] == [(4, 4)] * 3
    assert [c.strides for c in convs] == [(2, 2), (2, 2), (1, 1)]
    assert [c.filters for c in convs] == [64, 128, 1]
    kernel = keras.ops.convert_to_numpy(convs[1].kernel)
    assert abs(kernel.mean()) < 0.002 and 0.017 < kernel.std() < 0.023  # N(0, 0.02)
    logits = discriminator(np.zeros((2, 64, 64, 1), "float32"))
    assert logits.shape == (2, 16, 16, 1)


@pytest.mark.parametrize("factory, kwargs", [(SSPGenerator, TINY), (PatchDiscriminator, dict(base_width=4))])
def test_keras_save_and_load_round_trip(tmp_path, factory, kwargs):
    model = factory(channels=1, **kwargs)
    images = np.random.default_rng(1).random((1, 64, 64, 1)).astype("float32")
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is factory
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(images)), keras.ops.convert_to_numpy(model(images)))


def test_constructor_validates():
    with pytest.raises(ValueError, match="channels"):
        SSPGenerator(channels=2, **TINY)
    with pytest.raises(ValueError, match="decoder_widths"):
        SSPGenerator(**{**TINY, "decoder_widths": (8, 8)})
    with pytest.raises(ValueError, match="num_layers"):
        PatchDiscriminator(num_layers=1)


def test_encoder_weights_load_from_a_local_file(tmp_path):
    source = SSPGenerator(channels=1, **TINY)
    path = str(tmp_path / "encoder.weights.h5")
    source.encoder.save_weights(path)
    target = SSPGenerator(channels=1, **TINY)
    load_encoder_weights(target, path)
    for a, b in zip(source.encoder.weights, target.encoder.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    with pytest.raises(ValueError, match="not found"):
        load_encoder_weights(target, str(tmp_path / "missing.weights.h5"))


def test_generator_defaults_are_per_sample_mirror_padded_and_start_as_the_identity():
    generator = SSPGenerator(channels=1, **TINY)
    assert generator.normalization == "instance" and generator.padding == "mirror" and generator.output_skip
    images = np.random.default_rng(2).random((2, 64, 64, 1)).astype("float32")
    out = keras.ops.convert_to_numpy(generator(images))
    np.testing.assert_allclose(out, np.clip(images, 1e-3, 1 - 1e-3), atol=1e-5)


def test_an_image_is_enhanced_the_same_alone_and_in_any_batch():
    generator = randomised(SSPGenerator(channels=1, **TINY))
    rng = np.random.default_rng(3)
    image = rng.random((1, 64, 64, 1)).astype("float32")
    others = rng.random((3, 64, 64, 1)).astype("float32") * 0.2  # very different batch-mates
    alone = keras.ops.convert_to_numpy(generator(image))
    in_batch = keras.ops.convert_to_numpy(generator(np.concatenate([others, image])))[-1:]
    in_training_mode = keras.ops.convert_to_numpy(generator(np.concatenate([image, others]), training=True))[:1]
    assert np.abs(alone - image).max() > 0.05  # the randomised network does change the image
    np.testing.assert_allclose(in_batch, alone, atol=1e-5)
    np.testing.assert_allclose(in_training_mode, alone, atol=1e-5)


@pytest.mark.parametrize("padding, expect_flat", [("mirror", True), ("zero", False)])
def test_mirror_padding_leaves_no_border_band(padding, expect_flat):
    """A uniform image stays uniform through a mirror-padded network (every pixel sees the same
    neighbourhood); zero padding makes the border differ, which is the band users saw."""
    generator = randomised(SSPGenerator(channels=1, padding=padding, output_skip=False, **TINY), seed=4)
    out = keras.ops.convert_to_numpy(generator(np.full((1, 96, 96, 1), 0.4, "float32")))[0, :, :, 0]
    band = abs(float(np.concatenate([out[:6].ravel(), out[-6:].ravel(), out[:, :6].ravel(), out[:, -6:].ravel()]).mean()
                     - out[12:-12, 12:-12].mean()))
    if expect_flat:
        assert float(out.std()) < 1e-5 and band < 1e-5
    else:
        assert band > 1e-3


def test_instance_normalization_equals_keras_group_normalization_per_channel():
    from ssp_keras.networks.layers import InstanceNormalization

    x = np.random.default_rng(5).normal(2.0, 3.0, (3, 9, 7, 4)).astype("float32")
    ours, keras_layer = InstanceNormalization(epsilon=1e-5), keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    ours.build(x.shape), keras_layer.build(x.shape)
    gamma, beta = np.array([1.0, 2.0, -1.0, 0.5], "float32"), np.array([0.0, 1.0, 2.0, -3.0], "float32")
    ours.set_weights([gamma, beta]), keras_layer.set_weights([gamma, beta])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(keras_layer(x)), atol=1e-4)


def test_generators_saved_before_padding_existed_load_as_zero_padded_sigmoid_networks():
    config = SSPGenerator(channels=1, normalization="batch", padding="zero", output_skip=False, **TINY).get_config()
    legacy = {key: value for key, value in config.items() if key not in ("padding", "output_skip")}
    rebuilt = SSPGenerator.from_config(legacy)
    assert rebuilt.padding == "zero" and not rebuilt.output_skip and rebuilt.normalization == "batch"


def test_model_files_hold_the_architecture_and_precision_not_the_cpu_kernels(tmp_path):
    generator = randomised(SSPGenerator(channels=1, fused_kernels=False, **TINY), seed=3)
    config = generator.get_config()
    assert "fused_kernels" not in config and config["dtype"]["config"]["name"] == "float32"
    generator.save(str(tmp_path / "g.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "g.keras"), compile=False)
    assert loaded.fused_kernels  # the loading process' choice (the default), not the saving one's
    assert loaded.get_config() == config


@pytest.mark.parametrize("fused_kernels", [True, False])
def test_model_files_that_hold_fused_kernels_still_load(tmp_path, fused_kernels):
    """Files saved before ``fused_kernels`` left the generator's config (every bundled model up to
    #21's stage 5) hold ``"fused_kernels": true`` or false and no ``dtype``: such a file, made from
    the bundled one, loads with the same weights."""
    import json
    import os
    import zipfile

    bundled = os.path.join(os.path.dirname(__file__), "..", "models", "ccmid-lite", "generator.keras")
    with zipfile.ZipFile(bundled) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    saved = json.loads(members["config.json"])
    assert saved["config"].pop("dtype")["config"]["name"] == "float32"  # saved by the code of today
    saved["config"]["fused_kernels"] = fused_kernels
    members["config.json"] = json.dumps(saved).encode()
    copy = tmp_path / "old.keras"
    with zipfile.ZipFile(copy, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    loaded = keras.saving.load_model(str(copy), compile=False)
    reference = keras.saving.load_model(bundled, compile=False)
    assert isinstance(loaded, SSPGenerator) and "fused_kernels" not in loaded.get_config()
    assert loaded.dtype_policy.name == "float32"
    for mine, theirs in zip(loaded.weights, reference.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_instance_normalization_gradients_equal_keras_group_normalization():
    import tensorflow as tf

    from ssp_keras.networks.layers import InstanceNormalization

    x = tf.constant(np.random.default_rng(6).normal(1.0, 2.0, (2, 6, 5, 3)).astype("float32"))
    weight = tf.constant(np.random.default_rng(7).normal(size=(2, 6, 5, 3)).astype("float32"))
    results = []
    for layer in (InstanceNormalization(epsilon=1e-5), keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)):
        layer.build(x.shape)
        layer.set_weights([np.array([1.5, -0.5, 2.0], "float32"), np.array([0.1, 0.2, 0.3], "float32")])
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x)) * weight)  # a non-trivial upstream gradient
        results.append(tape.gradient(loss, [x] + layer.trainable_weights))
    for ours, reference in zip(*results):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype, transposes", [("float32", False), ("bfloat16", True)])
def test_instance_norm_of_a_batch_splits_it_into_images_in_float32_only(dtype, transposes):
    """float32 normalises each image with its own fused kernel (no transposes, measured ~2x faster in
    training); half precision keeps the batch-as-one-image view its fast bfloat16 kernel needs."""
    import tensorflow as tf

    from ssp_keras.networks.tf_kernels import instance_norm as _instance_norm

    x = tf.cast(tf.random.normal([4, 6, 5, 16], seed=1), dtype)
    gamma, beta = tf.ones([16]), tf.zeros([16])
    graph = tf.function(lambda x: _instance_norm(x, gamma, beta, 1e-5)).get_concrete_function(x).graph
    op_types = [op.type for op in graph.get_operations()]
    assert ("Transpose" in op_types) == transposes
    assert op_types.count("FusedBatchNormV3") == (1 if transposes else 4)
    reference = tf.nn.batch_normalization(tf.cast(x, tf.float32), *tf.nn.moments(tf.cast(x, tf.float32), [1, 2], keepdims=True),
                                          None, None, 1e-5)
    np.testing.assert_allclose(tf.cast(_instance_norm(x, gamma, beta, 1e-5), tf.float32), reference,
                               atol=2e-2 if dtype == "bfloat16" else 1e-5)


def test_full_resolution_skip_feeds_the_image_to_the_last_decoder_stage_and_round_trips(tmp_path):
    plain, skip = SSPGenerator(channels=1, **TINY), SSPGenerator(channels=1, full_resolution_skip=True, **TINY)
    concat = skip.get_layer("decoder5_concat")
    assert concat.input[1] is skip.inputs[0] or concat.input[1].name == skip.inputs[0].name
    assert "decoder5_concat" not in [layer.name for layer in plain.layers]
    assert skip.count_params() - plain.count_params() == 3 * 3 * 1 * TINY["decoder_widths"][-1]  # the image's kernel
    path = str(tmp_path / "skip.keras")
    randomised(skip).save(path)
    again = keras.saving.load_model(path)
    assert again.full_resolution_skip
    images = np.random.default_rng(0).random((1, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(images)), keras.ops.convert_to_numpy(skip(images)),
                               atol=1e-6)


def test_grow_generator_adds_a_full_resolution_skip_and_keeps_the_output():
    from ssp_keras.networks import grow_generator

    source = randomised(SSPGenerator(channels=1, **TINY), seed=2)
    target = SSPGenerator(channels=1, full_resolution_skip=True, **TINY)
    grow_generator(source, target)
    images = np.random.default_rng(1).random((2, 64, 96, 1)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(target(images)), keras.ops.convert_to_numpy(source(images)))
    with pytest.raises(ValueError, match="the full-resolution skip added or decoder stages widened"):
        grow_generator(target, source)  # a skip cannot be taken away


def test_grow_generator_widens_decoder_stages_and_keeps_the_output():
    """Widening a middle stage (its new channels sit between the previous output and the skip
    feature of the next stage's input) and the last one (new channels last), with the skip added."""
    import tensorflow as tf

    from ssp_keras.networks import grow_generator

    source = randomised(SSPGenerator(channels=1, **TINY), seed=4)
    target = SSPGenerator(channels=1, full_resolution_skip=True, **{**TINY, "decoder_widths": (8, 12, 4, 4, 16)})
    grow_generator(source, target)
    images = np.random.default_rng(5).random((2, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(target(images)), keras.ops.convert_to_numpy(source(images)),
                               atol=1e-6)
    # The new channels' outgoing weights start at 0 but get a gradient, so training can use them.
    outgoing = target.get_layer("to_image").kernel
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.abs(target(images) - 0.5))
    gradient = tape.gradient(loss, outgoing).numpy()
    assert np.all(outgoing.numpy()[:, :, 4:, :] == 0) and np.abs(gradient[:, :, 4:, :]).max() > 0
    narrower = SSPGenerator(channels=1, **{**TINY, "decoder_widths": (8, 8, 4, 4, 2)})
    with pytest.raises(ValueError, match="decoder stages widened"):
        grow_generator(source, narrower)
    deeper = SSPGenerator(channels=1, **{**TINY, "encoder_widths": (4, 4, 8, 16)})
    with pytest.raises(ValueError, match="nothing else"):
        grow_generator(source, deeper)


def test_interpolate_generators_goes_from_start_to_end_in_weight_space():
    """Weight 0 computes the (narrower) start's output, 1 the end's; 0.25 is a quarter of the way
    for every weight (new channels: end's incoming weights, a quarter of its outgoing ones)."""
    from ssp_keras.networks import interpolate_generators

    start = randomised(SSPGenerator(channels=1, **TINY), seed=6)
    end = randomised(SSPGenerator(channels=1, full_resolution_skip=True, **{**TINY, "decoder_widths": (8, 8, 4, 4, 6)}),
                     seed=7)
    images = np.random.default_rng(8).random((2, 64, 64, 1)).astype("float32")
    output = lambda model: keras.ops.convert_to_numpy(model(images))  # noqa: E731
    np.testing.assert_allclose(output(interpolate_generators(start, end, 0.0)), output(start), atol=1e-5)
    np.testing.assert_allclose(output(interpolate_generators(start, end, 1.0)), output(end), atol=1e-5)
    quarter = interpolate_generators(start, end, 0.25)
    outgoing = keras.ops.convert_to_numpy(quarter.get_layer("to_image").kernel)
    end_outgoing = keras.ops.convert_to_numpy(end.get_layer("to_image").kernel)
    start_outgoing = keras.ops.convert_to_numpy(start.get_layer("to_image").kernel)
    np.testing.assert_allclose(outgoing[:, :, 4:], 0.25 * end_outgoing[:, :, 4:], rtol=1e-6)
    np.testing.assert_allclose(outgoing[:, :, :4], start_outgoing + 0.25 * (end_outgoing[:, :, :4] - start_outgoing),
                               rtol=1e-5, atol=1e-7)
    assert 0 < np.abs(output(quarter) - output(start)).mean() < np.abs(output(end) - output(start)).mean()
    for weight in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="weight must be in"):
            interpolate_generators(start, end, weight)
    with pytest.raises(ValueError, match="nothing else"):
        interpolate_generators(end, start, 0.5)  # a skip cannot be taken away


def test_only_the_full_resolution_skip_lets_g_remove_pixel_noise():
    """The same 150 steps of fitting G(x + n) to x (L1) with and without the skip: without it G's
    correction is computed at half resolution or coarser and the output skip passes the noise
    through (measured share of the noise kept, |G(x + n) - x| / |n|: 1.02 without, 0.73 with)."""
    from ssp_keras.data.synthetic import generate_pair

    clean = np.stack([generate_pair(seed, size=64)[1] for seed in range(8)])
    rng = np.random.default_rng(0)
    noisy = np.clip(clean + rng.normal(0.0, 0.05, clean.shape), 0, 1).astype("float32")
    test_noisy = np.clip(clean + rng.normal(0.0, 0.05, clean.shape), 0, 1).astype("float32")  # other draws
    kept = {}
    for full_resolution_skip in (False, True):
        keras.utils.set_random_seed(0)
        generator = SSPGenerator(channels=1, full_resolution_skip=full_resolution_skip, **TINY)
        generator.compile(keras.optimizers.Adam(3e-3), loss="mae")
        generator.fit(noisy, clean, batch_size=4, epochs=75, verbose=0)
        output = keras.ops.convert_to_numpy(generator(test_noisy))
        kept[full_resolution_skip] = float(np.abs(output - clean).mean() / np.abs(test_noisy - clean).mean())
    print("share of the noise kept: without the skip", round(kept[False], 3), "with", round(kept[True], 3))
    assert kept[True] < 0.8 * kept[False]
