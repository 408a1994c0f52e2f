"""The two networks of SSP-Net: the Siamese generator G and the PatchGAN discriminator D."""

from ssp_keras.networks.discriminator import PatchDiscriminator, build_discriminator
from ssp_keras.networks.generator import (
    SSPGenerator, build_generator, grow_generator, interpolate_generators, load_encoder_weights,
)

__all__ = [
    "PatchDiscriminator",
    "SSPGenerator",
    "build_discriminator",
    "build_generator",
    "grow_generator",
    "interpolate_generators",
    "load_encoder_weights",
]
