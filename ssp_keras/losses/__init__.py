"""The losses of SSP-Net (SPEC section 3), as plain functions on batches.

Each returns a per-sample loss vector ``[N]``; the model reduces it over the global batch so that
the result is the same on one replica or many.
"""

from ssp_keras.losses.adversarial import adversarial_loss
from ssp_keras.losses.consistency import restoration_consistency_loss, shading_consistency_loss
from ssp_keras.losses.illumination import illumination_uniformity_loss
from ssp_keras.losses.restoration import synthetic_restoration_loss
from ssp_keras.losses.structure import structure_loss, structure_map
from ssp_keras.losses.texture import fine_band, texture_keeping_loss

__all__ = [
    "adversarial_loss", "illumination_uniformity_loss", "restoration_consistency_loss", "shading_consistency_loss",
    "fine_band", "structure_loss", "structure_map", "synthetic_restoration_loss", "texture_keeping_loss",
]
