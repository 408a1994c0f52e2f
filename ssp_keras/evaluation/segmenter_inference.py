"""Loading a fibre segmenter and segmenting images of any size.

Moved to `ssp_keras.segmentation.inference`; this module re-exports its names for one release.
"""

from ssp_keras.segmentation.inference import (  # noqa: F401
    SEGMENTER_FILE,
    SEGMENT_TILE_OVERLAP,
    SEGMENT_TILE_PIXELS,
    SEGMENT_TILE_SIZE,
    load_segmenter,
    resolve_segmenter_path,
    segment,
    size_multiple,
)
