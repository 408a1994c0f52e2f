import keras
import numpy as np
import pytest

from ssp_keras.config import preset
from ssp_keras.networks import PatchDiscriminator, SSPGenerator, build_discriminator, build_generator, load_encoder_weights

TINY = dict(encoder_block="basic", encoder_stages=(1, 1, 1, 1), encoder_widths=(4, 4, 8, 8),
            stem_width=4, decoder_widths=(8, 8, 4, 4, 4))


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
