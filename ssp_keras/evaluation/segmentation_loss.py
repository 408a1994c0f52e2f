"""CS-Net's loss.

Moved to `ssp_keras.segmentation.loss`; this module re-exports its names for one release.
"""

from ssp_keras.segmentation.loss import mse_dice_loss  # noqa: F401
