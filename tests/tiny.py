"""Tiny configurations shared by the tests: the real architectures, a few thousand parameters."""

from ssp_keras.config import preset

#: Overrides (dotted config keys) that shrink the lite preset to a seconds-fast model.
TINY_OVERRIDES = {
    "generator.encoder_block": "basic",
    "generator.encoder_stages": (1, 1, 1, 1),
    "generator.encoder_widths": (4, 4, 8, 8),
    "generator.stem_width": 4,
    "generator.decoder_widths": (8, 8, 4, 4, 4),
    "discriminator.base_width": 4,
    "data.image_size": 64,
    "train.batch_size": 2,
}


def tiny_config(**overrides):
    """The tiny configuration, with further dotted-key overrides."""
    return preset("lite").replace(**{**TINY_OVERRIDES, **overrides})
