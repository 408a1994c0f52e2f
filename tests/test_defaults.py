"""Each model default and rule lives once (ssp_keras.defaults): the constructors and the config
sections read the same values and give the same complaints."""

import dataclasses
import inspect

import pytest

from ssp_keras import config, defaults
from ssp_keras.evaluation.csnet import CSNet
from ssp_keras.networks import PatchDiscriminator, SSPGenerator, layers
from ssp_keras.training.model import SSPNet

SHARED = [
    (SSPGenerator, defaults.GENERATOR, config.GeneratorConfig),
    (PatchDiscriminator, defaults.DISCRIMINATOR, config.DiscriminatorConfig),
    (SSPNet, defaults.LOSS, config.LossConfig),
    (CSNet, defaults.CSNET, None),
]


@pytest.mark.parametrize("cls, values, section", SHARED, ids=lambda value: getattr(value, "__name__", ""))
def test_constructor_and_config_defaults_are_the_same_values(cls, values, section):
    parameters = inspect.signature(cls.__init__).parameters
    fields = {field.name: field.default for field in dataclasses.fields(section)} if section else {}
    for name, value in values.items():
        assert parameters[name].default == value, name
        if name in fields:
            assert fields[name] == value, name
    if section:  # every constructor argument the section mirrors has its default from defaults.py
        for name in set(fields) & set(parameters):
            if name != "sync_batch_norm":  # config: None = decided by the replica count; constructor: a bool
                assert name in values, name


def test_constructor_and_config_complain_alike():
    with pytest.raises(ValueError, match=r"^SSPGenerator argument 'decoder_widths': must have 5 entries, got 2$"):
        SSPGenerator(decoder_widths=(8, 8))
    with pytest.raises(ValueError, match=r"^config field 'generator.decoder_widths': must have 5 entries, got 2$"):
        config.preset("lite").replace(**{"generator.decoder_widths": (8, 8)})
    with pytest.raises(ValueError, match=r"^SSPNet argument 'ssim_window': must be odd, got 4$"):
        SSPNet(generator=None, discriminator=None, ssim_window=4)
    with pytest.raises(ValueError, match=r"^config field 'loss.ssim_window': must be odd, got 4$"):
        config.preset("lite").replace(**{"loss.ssim_window": 4})


def test_copies_outside_reach_agree_with_the_one_home():
    """Values that modules this change may not edit still define themselves: they must agree."""
    from ssp_keras.inference.enhance import PAD_MULTIPLE

    assert layers.NORMALIZATIONS == defaults.NORMALIZATIONS
    assert layers.PADDINGS == defaults.PADDINGS
    assert PAD_MULTIPLE == defaults.GENERATOR_SIZE_MULTIPLE
    assert config.LOSS_VARIANT_TERMS is defaults.LOSS_VARIANT_TERMS
