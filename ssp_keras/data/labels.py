"""Images and the files that belong to them (fibre labels, field-of-view masks), matched by name.

An image ``scans/a.png`` and a label ``labels/a.tif`` belong together: they share the *stem*, the
file name without folder and extension. Used by the segmenter's training folders and by the
evaluation reports (labels and masks). No TensorFlow.
"""

from __future__ import annotations

import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ssp_keras.errors import InputError


def stem(path: str) -> str:
    """A file's name without folder and extension: the key images and labels are matched by."""
    return os.path.splitext(os.path.basename(path))[0]


def index_by_stem(files: Sequence[str], folder: str) -> Dict[str, str]:
    """``{stem: path}`` for ``files``; `InputError` when two files of ``folder`` share a stem."""
    index: Dict[str, str] = {}
    for path in files:
        key = stem(path)
        if key in index:
            raise InputError(f"two files in '{folder}' share the name '{key}': '{index[key]}' and '{path}'")
        index[key] = path
    return index


def match_by_stem(images: Sequence[str], images_folder: str, others_folder: str, what: str) -> Dict[str, str]:
    """Pairs every image with the file of the same stem in ``others_folder`` (labels or masks).

    Returns ``{image path: other path}``. Raises `InputError` naming the first file of
    ``others_folder`` without an image, or the first image without a file (``what`` says which
    kind of file, e.g. "label").
    """
    from ssp_keras.data.listing import list_images

    image_index = index_by_stem(images, images_folder)
    other_index = index_by_stem(list_images(others_folder), others_folder)
    for key, path in other_index.items():
        if key not in image_index:
            raise InputError(f"{what} '{path}' has no image of the same name in '{images_folder}'")
    for key, path in image_index.items():
        if key not in other_index:
            raise InputError(f"image '{path}' has no {what} of the same name in '{others_folder}'")
    return {image_index[key]: other_index[key] for key in image_index}


def read_binary_mask(path: str, shape: Tuple[int, int]) -> np.ndarray:
    """A label or field-of-view file as bool ``[H, W]`` (any nonzero pixel is True).

    ``shape``: the ``(H, W)`` of the image it belongs to; a different size is an `InputError`
    naming the file.
    """
    from ssp_keras.data.reading import read_image

    mask = read_image(path, channels=1)[..., 0] > 0
    if mask.shape != tuple(shape):
        raise InputError(f"'{path}' is {mask.shape[0]}x{mask.shape[1]} but its image is {shape[0]}x{shape[1]}")
    return mask


def check_sizes(pairs: Dict[str, str]) -> None:
    """`InputError` naming the first ``{image: label or mask}`` pair whose sizes differ, from the
    files' headers (nothing decoded where a header tells): before any work, not after it."""
    from ssp_keras.data.reading import read_image_shape

    for image_path, other_path in pairs.items():
        image, other = read_image_shape(image_path)[:2], read_image_shape(other_path)[:2]
        if image != other:
            raise InputError(f"'{other_path}' is {other[0]}x{other[1]} but its image is {image[0]}x{image[1]}")


def load_labelled_folders(images: str, labels: str, channels: int) -> Tuple[List[np.ndarray], List[np.ndarray], List[str]]:
    """Reads every image of ``images`` and its label of the same stem in ``labels``.

    Returns ``(images float32 [H, W, channels] in [0, 1], labels bool [H, W], image paths)``.
    Raises `InputError` for a missing folder, a label without image (or the reverse), an
    unreadable file or a size mismatch, naming the culprit.
    """
    from ssp_keras.data.listing import list_images
    from ssp_keras.data.reading import read_image

    for folder in (images, labels):
        if not os.path.isdir(folder):
            raise InputError(f"folder not found: '{folder}'")
    pairs = match_by_stem(list_images(images), images, labels, "label")
    check_sizes(pairs)  # every pair before the first is decoded
    loaded_images, loaded_labels = [], []
    for image_path, label_path in pairs.items():
        image = read_image(image_path, channels)
        loaded_images.append(image)
        loaded_labels.append(read_binary_mask(label_path, image.shape[:2]))
    return loaded_images, loaded_labels, list(pairs)


__all__ = ["check_sizes", "index_by_stem", "load_labelled_folders", "match_by_stem", "read_binary_mask", "stem"]
