"""Atomic writes and input-safety checks.

Checkpoints, exports, configs and reports are written to a temporary sibling and renamed into
place, so a crash or a polling reader never sees a half-written file. Outputs are never allowed
to land on, or inside the folder of, a user's input.

Whole folders (SavedModel exports) are built in a hidden staging folder named after the process
that builds it (`make_staging_dir`: ``.tmp-<pid>-<host>-<label>-XXXX``), so a later run can remove
what a killed one left behind (`remove_stale_staging_dirs`) without touching a live one's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from typing import Iterable, List


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates the file 0600; give it the permissions an ordinary open() would.
        os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_save(path: str, save_fn) -> None:
    """Calls ``save_fn(temporary_path)`` then renames the result onto ``path``.

    For writers that want a file name (``model.save``, ``cv2.imwrite``): the temporary name keeps
    the extension of ``path`` so that format detection still works.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, extension = os.path.splitext(os.path.basename(path))
    handle, temporary = tempfile.mkstemp(prefix=f".tmp-{base}-", suffix=extension, dir=folder)
    os.close(handle)
    os.remove(temporary)
    try:
        save_fn(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.remove(temporary)
        raise


def is_within(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` itself or lies below it (symlinks resolved)."""
    path = os.path.realpath(path)
    folder = os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output_location(output_folder: str, inputs: Iterable[str], allow_beside_files: bool = False) -> None:
    """Refuses an output folder that is an input folder, lies inside one, or holds an input file.

    allow_beside_files: accept an output folder that is, or lies inside, the folder of an input
      *file* (``cd scans && ssp-net enhance one.png --out results``); the caller then makes sure
      that no output path is an input path.
    Raises ``ValueError`` naming the conflicting input.
    """
    for item in inputs:
        folder = item if os.path.isdir(item) else os.path.dirname(os.path.abspath(item))
        if is_within(output_folder, folder) and os.path.isdir(item):
            raise ValueError(
                f"refusing to write into the input folder {item!r}: choose an --out outside it"
            )
        if os.path.isfile(item) and is_within(output_folder, folder) and not allow_beside_files:
            raise ValueError(
                f"refusing to write next to the input file {item!r}: choose an --out in another folder"
            )


# --------------------------------------------------------------------------------- staging folders
_STAGING_PATTERN = re.compile(r"^\.tmp-(?P<pid>\d+)-(?P<host>[A-Za-z0-9]*)-")


def _host_tag() -> str:
    """This machine's name reduced to letters and digits (staging names parse unambiguously)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def make_staging_dir(parent: str, label: str = "") -> str:
    """A new hidden folder ``parent/.tmp-<pid>-<host>-<label>-XXXX`` to build an output in.

    The process id and host name in the name let `remove_stale_staging_dirs` tell a folder left by
    a killed process from one another process is still filling.
    """
    os.makedirs(parent, exist_ok=True)
    label = re.sub(r"[^A-Za-z0-9_.]", "", str(label))
    prefix = f".tmp-{os.getpid()}-{_host_tag()}-" + (f"{label}-" if label else "")
    return tempfile.mkdtemp(prefix=prefix, dir=parent)


def pid_is_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (another user's counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, but belongs to someone else
        return True
    except OSError:
        return True  # unknown: keep the folder
    return True


def remove_stale_staging_dirs(parent: str) -> List[str]:
    """Removes staging folders in ``parent`` left by processes of this machine that are gone.

    Only folders named by `make_staging_dir` are considered; a folder whose process is alive (or
    that was made on another host, e.g. over a shared file system) is kept. Returns the removed
    paths.
    """
    removed: List[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    host = _host_tag()
    for name in names:
        match = _STAGING_PATTERN.match(name)
        path = os.path.join(parent, name)
        if match is None or match.group("host") != host or not os.path.isdir(path) or os.path.islink(path):
            continue
        pid = int(match.group("pid"))
        if pid == os.getpid() or pid_is_alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
    return removed


def keras_file_in(source: str, file_name: str, folder_hint: str) -> str | None:
    """The ``.keras`` file that ``source`` designates, or None when it is neither file nor folder.

    ``source`` is a folder holding ``file_name`` (a run or segmenter folder) or a ``.keras`` file.
    A folder without that file, or a file of another kind, raises `InputError` naming it;
    ``folder_hint`` says what such a folder should be.
    """
    from ssp_keras.errors import InputError

    source = os.fspath(source)
    if os.path.isdir(source):
        candidate = os.path.join(source, file_name)
        if not os.path.isfile(candidate):
            raise InputError(f"no {file_name} in the folder '{source}' ({folder_hint})")
        return candidate
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise InputError(f"'{source}' is not a .keras model file")
        return source
    return None
