"""The one image-grid maker: images letterboxed into square cells under a header of column names.

Used for the evaluation report's ``comparison.png`` (rows are images, columns methods), the demo's
before/after picture, and the training previews (TensorBoard image and ``previews/epochNNNN.png``:
LQ | G(LQ) | HQ | G(HQ)).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

DEFAULT_GRID_CELL = 192  # pixels per grid cell side (images are letterboxed into it)
GRID_GAP = 4
GRID_HEADER = 28  # height of the band with the column names


def _letterbox(image: np.ndarray, cell: int) -> np.ndarray:
    """``image`` ``[H, W, C]`` in [0, 1] scaled to fit a ``cell`` square, centred, RGB float32."""
    import cv2

    height, width = image.shape[:2]
    scale = cell / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(np.ascontiguousarray(image, np.float32), (new_width, new_height), interpolation=interpolation)
    resized = resized.reshape(new_height, new_width, -1)
    if resized.shape[-1] == 1:
        resized = np.repeat(resized, 3, axis=-1)
    canvas = np.zeros((cell, cell, 3), np.float32)
    top, left = (cell - new_height) // 2, (cell - new_width) // 2
    canvas[top : top + new_height, left : left + new_width] = np.clip(resized, 0.0, 1.0)
    return canvas


def grid_size(rows: int, columns: int, cell: int = DEFAULT_GRID_CELL) -> Tuple[int, int]:
    """``(height, width)`` in pixels of a comparison grid of ``rows`` x ``columns`` cells."""
    return GRID_HEADER + rows * cell + (rows + 1) * GRID_GAP, columns * cell + (columns + 1) * GRID_GAP


def comparison_grid(
    cells: Sequence[Sequence[np.ndarray]], column_names: Sequence[str], cell: int = DEFAULT_GRID_CELL
) -> np.ndarray:
    """A white sheet with ``cells[row][column]`` letterboxed into squares and a header of names.

    cells: rows of images (float ``[H, W, C]`` in [0, 1], any sizes), all rows as long as
    ``column_names``. Returns float32 RGB ``[height, width, 3]`` (:func:`grid_size`).
    """
    import cv2

    height, width = grid_size(len(cells), len(column_names), cell)
    sheet = np.ones((height, width, 3), np.float32)
    header = np.full((GRID_HEADER, width, 3), 255, np.uint8)  # OpenCV draws text on 8-bit images only
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    for column, name in enumerate(column_names):
        left = GRID_GAP + column * (cell + GRID_GAP)
        text = name
        while len(text) > 1 and cv2.getTextSize(text, font, scale, 1)[0][0] > cell:  # shorten to fit
            text = text[:-1]
        cv2.putText(header, text, (left + 2, GRID_HEADER - 9), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    sheet[:GRID_HEADER] = header.astype(np.float32) / 255.0
    for row, images in enumerate(cells):
        top = GRID_HEADER + GRID_GAP + row * (cell + GRID_GAP)
        for column, image in enumerate(images):
            left = GRID_GAP + column * (cell + GRID_GAP)
            sheet[top : top + cell, left : left + cell] = _letterbox(image, cell)
    return sheet


__all__ = ["DEFAULT_GRID_CELL", "GRID_GAP", "GRID_HEADER", "comparison_grid", "grid_size"]
