"""Finding the images of files and folders, and checking that they decode before training.

`list_images` lists a folder recursively (hidden files skipped, sorted, so runs are
reproducible); `expand_image_paths` turns files and folders into files; `scan_images` decodes
every one and reports the unreadable ones by name.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from ssp_keras.data.decoding import UnreadableImageError
from ssp_keras.data.formats import IMAGE_EXTENSIONS, is_image_file
from ssp_keras.data.reading import read_image
from ssp_keras.errors import InputError

logger = logging.getLogger(__name__)


def list_images(folder: str) -> List[str]:
    """All image files below ``folder`` (recursive), sorted by path so runs are reproducible.

    Hidden files and folders (names starting with ``.``: temporary files of atomic writes,
    macOS ``._*`` resource forks) are ignored; links to folders inside are not followed (no cycles). Raises `InputError` when ``folder`` does not exist,
    is not a folder, or holds no image file.
    """
    if not os.path.exists(folder):
        raise InputError(f"image folder not found: '{folder}'")
    if not os.path.isdir(folder):
        raise InputError(f"not a folder: '{folder}'")
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        found.extend(
            os.path.join(root, name)
            for name in names
            if not name.startswith(".") and is_image_file(name)
        )
    if not found:
        raise InputError(
            f"no image files in '{folder}' (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)"
        )
    return sorted(found)


# --------------------------------------------------------------------------------- scanning
def expand_image_paths(
    paths_or_folders: Union[str, Sequence[str]], missing: str = "image file or folder not found: '{}'"
) -> List[str]:
    """Files as given and the images of folders (``list_images``), in order.

    A path that does not exist raises `InputError` with ``missing`` formatted with it: a
    mistyped path is an error, not a file to skip.
    """
    if isinstance(paths_or_folders, (str, os.PathLike)):
        paths_or_folders = [paths_or_folders]
    files: List[str] = []
    for source in (os.fspath(item) for item in paths_or_folders):
        if not os.path.exists(source):
            raise InputError(missing.format(source))
        files.extend(list_images(source) if os.path.isdir(source) else [source])
    return files


def scan_images(
    paths_or_folders: Union[str, Sequence[str]],
    channels: Optional[int] = None,
    max_workers: Optional[int] = None,
) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Checks that every image decodes, so training never meets a bad file half-way.

    paths_or_folders: files and/or folders (folders are listed with `list_images`); a path that
      does not exist raises `InputError` at once.
    Returns ``(readable, skipped)``: readable paths in order, and ``(path, reason)`` for each
    file that could not be decoded. Each skipped file is logged as a warning naming it, followed
    by a count ("skipped 2 of 14 files"). Files are fully decoded (in a thread pool: the decoders
    release the GIL), which is the only reliable way to catch truncated JPEGs.
    Raises `InputError` when no file is readable.
    """
    if isinstance(paths_or_folders, (str, os.PathLike)):
        paths_or_folders = [paths_or_folders]
    sources = [os.fspath(item) for item in paths_or_folders]
    if not sources:
        raise InputError("no image files or folders given")
    files = expand_image_paths(sources)

    def check(path: str) -> Optional[str]:
        try:
            read_image(path, channels)
        except UnreadableImageError as error:
            return error.reason
        return None

    workers = max_workers or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = list(pool.map(check, files))
    readable = [path for path, reason in zip(files, reasons) if reason is None]
    skipped = [(path, reason) for path, reason in zip(files, reasons) if reason is not None]
    for path, reason in skipped:
        logger.warning("skipping unreadable image '%s': %s", path, reason)
    if skipped:
        logger.warning("skipped %d of %d files in %s", len(skipped), len(files), _names(sources))
    if not readable:
        first_path, first_reason = skipped[0]
        raise InputError(
            f"no readable image in {_names(sources)}: all {len(files)} files failed "
            f"(first: '{first_path}': {first_reason})"
        )
    return readable, skipped


def _names(sources: Iterable[str]) -> str:
    sources = list(sources)
    shown = ", ".join(f"'{source}'" for source in sources[:3])
    return shown + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")
