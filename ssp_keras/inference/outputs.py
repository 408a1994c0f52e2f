"""Where the results of enhancing files go: output names, and the plan checked before any work.

`plan_outputs` maps input files and folders onto files under ``--out`` (names and relative folders
kept; DICOM stays DICOM or becomes PNG, one file per frame; GIF becomes PNG) and refuses unsafe
layouts before anything is read or written: an output that is an input, two inputs on one output,
``--out`` inside an input folder, existing files unless ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import List, Optional, Sequence

from ssp_keras.data.formats import DICOM_FORMATS, WRITE_EXTENSIONS, extension_of
from ssp_keras.errors import InputError

#: Output extension for inputs whose format cannot be written (DICOM, GIF).
FALLBACK_EXTENSION = ".png"
#: What ``dicom_as`` may say DICOM inputs become: a derived DICOM (default) or PNG.
DICOM_OUTPUT_FORMATS = ("dicom", "png")


@dataclasses.dataclass
class FileJob:
    """One input file and where its result goes (``relative``: the name kept under --out).

    ``frame_destinations``: one file per frame, when a multi-frame input goes to a format that
    holds one frame (a multi-frame DICOM written as PNG); None otherwise.
    """

    source: str
    relative: str
    destination: str
    frame_destinations: Optional[List[str]] = None

    @property
    def outputs(self) -> List[str]:
        """Every file this job writes."""
        return list(self.frame_destinations or [self.destination])


def output_name(relative: str, dicom_as: str = "dicom") -> str:
    """The output name for an input's relative path: the same, or ``.png`` for GIF (and for DICOM
    with ``dicom_as="png"``)."""
    extension = extension_of(relative)
    if extension in DICOM_FORMATS and dicom_as == "dicom":
        return relative
    return relative if extension in WRITE_EXTENSIONS else os.path.splitext(relative)[0] + FALLBACK_EXTENSION


def frame_file_names(destination: str, frames: int) -> List[str]:
    """``scan_frame001.png, scan_frame002.png, ...``: one name per frame of a multi-frame input."""
    base, extension = os.path.splitext(destination)
    width = max(3, len(str(frames)))
    return [f"{base}_frame{index:0{width}d}{extension}" for index in range(1, frames + 1)]


def plan_outputs(
    inputs: Sequence[str], out_dir: str, dicom_as: str = "dicom", overwrite: bool = False
) -> List[FileJob]:
    """Maps input files and folders onto files under ``out_dir``, refusing unsafe layouts.

    A file keeps its name (``out_dir/name``); a folder's images keep their path relative to the
    folder (``out_dir/sub/name``). DICOM stays DICOM, or with ``dicom_as="png"`` becomes PNG (one
    ``name_frameNNN.png`` per frame of a multi-frame file); GIF becomes PNG.
    Raises `InputError`, before anything is read or written, when an input does not exist, a folder
    has no image, ``out_dir`` is or lies inside an input folder, an output would be an input file
    (also through a link), two inputs would land on the same output, or -- unless ``overwrite`` --
    output files exist already (the message says how many). ``out_dir`` may lie in the folder of
    an input *file* (``cd scans && ssp-net enhance one.png --out results``).
    """
    from ssp_keras.data.dicom import dicom_frame_count
    from ssp_keras.data.listing import list_images
    from ssp_keras.utils.files import check_folder_creatable, check_output_location

    if dicom_as not in DICOM_OUTPUT_FORMATS:
        raise InputError(f"dicom_as must be one of {', '.join(DICOM_OUTPUT_FORMATS)}, got {dicom_as!r}")
    inputs = [os.fspath(item) for item in inputs]
    out_dir = os.fspath(out_dir)
    if not inputs:
        raise InputError("no input images or folders given")
    for item in inputs:
        if not os.path.exists(item):
            raise InputError(f"input not found: '{item}'")
    check_folder_creatable(out_dir, "--out")  # not a file, nor below one
    try:
        check_output_location(out_dir, inputs, allow_beside_files=True)
    except ValueError as error:
        raise InputError(str(error)) from None

    def job_for(path: str, relative: str) -> FileJob:
        relative = output_name(relative, dicom_as)
        destination = os.path.join(out_dir, relative)
        frames = dicom_frame_count(path) if extension_of(path) in DICOM_FORMATS and dicom_as == "png" else 1
        return FileJob(path, relative, destination, frame_file_names(destination, frames) if frames > 1 else None)

    jobs: List[FileJob] = []
    for item in inputs:
        if os.path.isdir(item):
            jobs.extend(job_for(path, os.path.relpath(path, item)) for path in list_images(item))
        else:
            jobs.append(job_for(item, os.path.basename(item)))

    sources = {os.path.realpath(job.source) for job in jobs}
    source_files = {_file_identity(job.source) for job in jobs} - {None}
    claimed = {}
    existing = []
    blocked_folders = functools.lru_cache(maxsize=None)(lambda folder: _file_in_the_way(folder, out_dir))
    for job in jobs:
        for output in job.outputs:
            target = os.path.realpath(output)
            if target in sources or _file_identity(output) in source_files:  # e.g. an input folder inside --out
                raise InputError(f"refusing to overwrite the input file '{job.source}': choose another --out")
            if target in claimed:
                raise InputError(
                    f"'{job.source}' and '{claimed[target]}' would both be written to '{output}'; "
                    "enhance them into different --out folders"
                )
            claimed[target] = job.source
            if os.path.isdir(output):
                raise InputError(f"cannot write '{output}' for '{job.source}': a folder of that name exists")
            blocked = blocked_folders(os.path.dirname(output))
            if blocked:
                raise InputError(f"cannot write '{output}' for '{job.source}': '{blocked}' is a file, not a folder")
            if os.path.lexists(output):
                existing.append(output)
    if existing and not overwrite:
        raise InputError(
            f"refusing to overwrite {len(existing)} existing file(s) in '{out_dir}' (first: '{existing[0]}'); "
            "pass --overwrite to replace them, or choose another --out"
        )
    return jobs


def _file_in_the_way(folder: str, root: str) -> Optional[str]:
    """The first path from ``folder`` up to ``root`` that exists but is not a folder (None: none)."""
    while True:
        if os.path.lexists(folder) and not os.path.isdir(folder):
            return folder
        if os.path.abspath(folder) == os.path.abspath(root) or os.path.dirname(folder) == folder:
            return None
        folder = os.path.dirname(folder)


def _file_identity(path: str):
    """``(device, inode)`` of an existing file (hard links share it), else None."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_dev, status.st_ino)
