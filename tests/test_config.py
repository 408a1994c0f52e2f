import json

import pytest

from ssp_keras.config import SSPNetConfig, preset


def test_presets_are_valid_and_differ():
    paper, lite = preset("paper"), preset("lite")
    assert paper.generator.encoder_block == "bottleneck"
    assert paper.generator.encoder_stages == (3, 4, 6, 3)
    assert paper.data.image_size == 384 and paper.train.batch_size == 4
    assert (paper.loss.lambda1, paper.loss.lambda2, paper.loss.alpha, paper.loss.beta) == (0.6, 0.4, 5.1, 1.0)
    assert (paper.train.generator_beta_1, paper.train.generator_beta_2) == (0.5, 0.9)
    assert (paper.train.discriminator_beta_1, paper.train.discriminator_beta_2) == (0.9, 0.999)
    assert lite.generator.encoder_block == "basic" and lite.data.image_size == 256


@pytest.mark.parametrize("name", ["paper", "lite"])
def test_json_and_yaml_round_trip(name, tmp_path):
    config = preset(name).replace(**{"train.epochs": 7, "loss.variant": "gan+te"})
    assert SSPNetConfig.from_json(config.to_json()) == config
    assert SSPNetConfig.from_yaml(config.to_yaml()) == config
    path = tmp_path / "config.json"
    config.to_json(str(path))
    assert SSPNetConfig.from_file(str(path)) == config
    assert json.loads(path.read_text())["train"]["epochs"] == 7


def test_partial_dict_starts_from_its_preset():
    config = SSPNetConfig.from_dict({"preset": "lite", "train": {"epochs": 3}})
    assert config.train.epochs == 3 and config.generator.stem_width == preset("lite").generator.stem_width


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"train.batch_size": 0}, "train.batch_size"),
        ({"data.image_size": 100}, "data.image_size"),
        ({"data.channels": 2}, "data.channels"),
        ({"loss.variant": "gan+xx"}, "loss.variant"),
        ({"loss.alpha": -1.0}, "loss.alpha"),
        ({"generator.encoder_stages": (3, 4)}, "generator.encoder_stages"),
        ({"generator.normalization": "layer"}, "generator.normalization"),
        ({"train.strategy": "tpu"}, "train.strategy"),
        ({"train.generator_beta_1": 1.5}, "train.generator_beta_1"),
        ({"discriminator.num_layers": 1}, "discriminator.num_layers"),
        ({"data.lq_noise": 0.5}, "data.lq_noise"),
        ({"data.lq_noise": -0.01}, "data.lq_noise"),
    ],
)
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        preset("lite").replace(**overrides)


def test_unknown_fields_and_presets_are_errors():
    with pytest.raises(ValueError, match="train.nonsense"):
        SSPNetConfig.from_dict({"train": {"nonsense": 1}})
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")
    with pytest.raises(ValueError, match="not valid JSON"):
        SSPNetConfig.from_json("{not json")


def test_loss_variant_switches():
    assert preset("lite").loss.use_illumination and preset("lite").loss.use_structure
    gan = preset("lite").replace(**{"loss.variant": "gan"}).loss
    assert not gan.use_illumination and not gan.use_structure
