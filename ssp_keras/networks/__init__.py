"""The two networks of SSP-Net: the Siamese generator G and the PatchGAN discriminator D."""

from ssp_keras.networks.discriminator import PatchDiscriminator, build_discriminator
from ssp_keras.networks.generator import SSPGenerator, add_full_resolution_skip, build_generator, load_encoder_weights

__all__ = [
    "PatchDiscriminator",
    "SSPGenerator",
    "add_full_resolution_skip",
    "build_discriminator",
    "build_generator",
    "load_encoder_weights",
]
