"""The image file formats the project reads and writes, by file name ending (lower case)."""

import os

#: File name endings (lower case) that are treated as images. Files without an extension are not.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".dcm")

#: Endings `ssp_keras.data.writing.write_image` can produce.
WRITE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

#: Endings decoded by Pillow, tifffile and pydicom respectively.
PIL_FORMATS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
TIFF_FORMATS = (".tif", ".tiff")
DICOM_FORMATS = (".dcm",)

#: The first eight bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def extension_of(path: str) -> str:
    """The file name ending of ``path`` in lower case (``".png"``), or ``""``."""
    return os.path.splitext(path)[1].lower()


def is_image_file(path: str) -> bool:
    """True when ``path`` ends in one of `IMAGE_EXTENSIONS` (case-insensitive)."""
    return extension_of(path) in IMAGE_EXTENSIONS
