"""CS-Net, the fibre segmenter's network.

Moved to `ssp_keras.segmentation.csnet`; this module re-exports its names for one release.
"""

from ssp_keras.segmentation.csnet import (  # noqa: F401
    DEFAULT_ATTENTION_REDUCTION,
    DEFAULT_BASE_WIDTH,
    DEFAULT_DEPTH,
    CSNet,
    ChannelAffinity,
    SpatialAffinity,
)
