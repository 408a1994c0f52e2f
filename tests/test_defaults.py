"""Each model hyperparameter is written once, as a field of its section (ssp_keras.defaults) with
its default and rule: the constructors take their defaults and complaints from it, the config is
made of the sections, and a section passed as ``**asdict`` builds its model."""

import dataclasses
import inspect

import pytest

from ssp_keras import config, defaults
from ssp_keras.evaluation.csnet import CSNet
from ssp_keras.networks import PatchDiscriminator, SSPGenerator
from ssp_keras.training.degradation import RestorationDegradation
from ssp_keras.training.model import SSPNet, build_sspnet
from tiny import tiny_config

SECTIONS = [
    (SSPGenerator, defaults.GeneratorConfig),
    (PatchDiscriminator, defaults.DiscriminatorConfig),
    (SSPNet, defaults.LossConfig),
    (RestorationDegradation, defaults.DegradationConfig),
]
#: Section fields that are no constructor argument: the config resolves them (None = by the
#: replica count), apply them after construction (a weights file) or load what they name (the
#: restoration teacher, passed to `SSPNet` as a model).
CONFIG_ONLY = {"encoder_weights", "restoration_teacher"}


@pytest.mark.parametrize("cls, section", SECTIONS, ids=lambda value: getattr(value, "__name__", ""))
def test_every_section_field_is_a_constructor_argument_with_the_sections_default(cls, section):
    parameters = inspect.signature(cls.__init__).parameters
    for field in dataclasses.fields(section):
        if field.name in CONFIG_ONLY:
            continue
        assert field.name in parameters, f"{cls.__name__} has no argument {field.name!r}"
        if field.name != "sync_batch_norm":  # config: None = decided by the replica count; constructor: a bool
            assert parameters[field.name].default == field.default, field.name
        assert "rule" in field.metadata, f"{section.__name__}.{field.name} has no rule"


def test_csnet_defaults_are_its_constructors():
    parameters = inspect.signature(CSNet.__init__).parameters
    for name, value in defaults.CSNET.items():
        assert parameters[name].default == value, name
    assert set(defaults.CSNET_RULES) == set(defaults.CSNET)


def test_constructor_and_config_complain_alike():
    with pytest.raises(ValueError, match=r"^SSPGenerator argument 'decoder_widths': must have 5 entries, got 2$"):
        SSPGenerator(decoder_widths=(8, 8))
    with pytest.raises(ValueError, match=r"^config field 'generator.decoder_widths': must have 5 entries, got 2$"):
        config.preset("lite").replace(**{"generator.decoder_widths": (8, 8)})
    with pytest.raises(ValueError, match=r"^SSPNet argument 'ssim_window': must be odd, got 4$"):
        SSPNet(generator=None, discriminator=None, ssim_window=4)
    with pytest.raises(ValueError, match=r"^config field 'loss.ssim_window': must be odd, got 4$"):
        config.preset("lite").replace(**{"loss.ssim_window": 4})
    with pytest.raises(ValueError, match=r"^PatchDiscriminator argument 'channels': must be one of \[1, 3\], got 2$"):
        PatchDiscriminator(channels=2)
    with pytest.raises(ValueError, match=r"^config field 'data.channels': must be one of \[1, 3\], got 2$"):
        config.preset("lite").replace(**{"data.channels": 2})


def test_every_loss_setting_reaches_the_model_and_its_saved_config(tmp_path):
    """A loss field that the constructor, its assignment or get_config forgot fails here: every
    field is given a value other than its default and must come back from the built model, from
    its config and from a model rebuilt from that config."""
    changed = {
        "variant": "gan+iu", "adversarial": "bce", "lambda1": 0.7, "lambda2": 0.3, "alpha": 2.0, "beta": 0.5,
        "iu_patch_sizes": (8,), "ssim_window": 7, "ssim_sigma": 1.0, "structure_noise": 0.02,
        "identity_weight": 0.25, "history_pool_size": 3, "denoising_noise": 0.05, "shading_consistency": 2.0,
        "shading_consistency_strength": 0.6, "restoration_consistency": 1.5, "synthetic_restoration": 4.0,
        "texture_keeping": 3.0,
    }
    assert set(changed) == {field.name for field in dataclasses.fields(defaults.LossConfig)} - CONFIG_ONLY
    teacher = str(tmp_path / "teacher.keras")
    build_sspnet(tiny_config()).generator.save(teacher)
    loss_config = tiny_config(**{f"loss.{name}": value for name, value in changed.items()},
                              **{"loss.restoration_teacher": teacher})
    model = build_sspnet(loss_config)
    rebuilt = SSPNet.from_config(model.get_config())
    for name, value in changed.items():
        assert getattr(model, name) == value, name
        assert getattr(rebuilt, name) == value, name
        assert model.get_config()[name] == (list(value) if isinstance(value, tuple) else value), name
