"""Atomic writes and input-safety checks.

Checkpoints, exports, configs and reports are written to a temporary sibling and renamed into
place, so a crash or a polling reader never sees a half-written file. Outputs are never allowed
to land on, or inside the folder of, a user's input.

Every temporary file (`atomic_write_bytes`, `atomic_save`) and every staging folder of a whole
output (SavedModel exports, `make_staging_dir`) is named after the process that writes it:
``.tmp-<pid>-<host>-<label>-XXXX``. So a later run can remove what a killed one left behind
(`remove_stale_temporaries`, run whenever a process takes a folder over, see
`ssp_keras.utils.locks.claim_folder`) without touching a live one's.
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
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(os.path.basename(path)), dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp creates the file 0600; give it the permissions an ordinary open() would.
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.exists(temporary):
            os.remove(temporary)
        _raise_naming(error, path)


def current_umask() -> int:
    """The process's umask (read without changing it for good)."""
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
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(base), suffix=extension, dir=folder)
    os.close(handle)
    os.remove(temporary)
    try:
        save_fn(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.remove(temporary)
        _raise_naming(error, path)


def _raise_naming(error: BaseException, path: str):
    """Re-raises ``error``; an `OSError` that names no file (ENOSPC from a write or fsync) is
    raised again naming ``path``, the output that could not be written."""
    if isinstance(error, OSError) and error.filename is None and error.errno is not None:
        raise OSError(error.errno, error.strerror or str(error), path) from error
    raise error


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


def check_folder_creatable(path, option: str = "--out") -> None:
    """`InputError` when ``path``, or the first of its parents that exists, is not a folder.

    Writes nothing: for the checks a command makes before it loads TensorFlow. An output folder
    that is an existing file could only fail later, after the work is done.
    """
    from ssp_keras.errors import InputError

    path = os.fspath(path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise InputError(f"{option} '{path}' is an existing file, not a folder: choose another {option}")
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and not os.path.isdir(parent):
        raise InputError(f"{option} '{path}' cannot be created: '{parent}' is a file, not a folder")


# --------------------------------------------------------------------------------- temporaries
_TEMPORARY_PATTERN = re.compile(r"^\.tmp-(?P<pid>\d+)-(?P<host>[A-Za-z0-9]*)-")


def _host_tag() -> str:
    """This machine's name reduced to letters and digits (temporary names parse unambiguously)."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def temporary_prefix(label: str = "") -> str:
    """``.tmp-<pid>-<host>-<label>-``: the start of every temporary file or folder name written here.

    The process id and host name let `remove_stale_temporaries` tell what a killed process left
    from what a live one is still writing; ``label`` (reduced to letters, digits, ``_`` and ``.``)
    says what it will become.
    """
    label = re.sub(r"[^A-Za-z0-9_.]", "", str(label))[:64]
    return f".tmp-{os.getpid()}-{_host_tag()}-" + (f"{label}-" if label else "")


def make_staging_dir(parent: str, label: str = "") -> str:
    """A new hidden folder ``parent/.tmp-<pid>-<host>-<label>-XXXX`` to build an output in."""
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=temporary_prefix(label), dir=parent)


def publish_staging_dir(staging: str, final_path: str) -> None:
    """Renames a finished staging folder to ``final_path``, with the mode an ordinary mkdir gives.

    ``mkdtemp`` creates folders ``drwx------``; a model server running as another user could not
    read a version published like that, so the umask decides, as for any new folder.
    """
    os.chmod(staging, 0o777 & ~current_umask())
    os.rename(staging, final_path)


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


def remove_stale_temporaries(parent: str, recursive: bool = False) -> List[str]:
    """Removes temporary files and staging folders in ``parent`` left by processes that are gone.

    Only names made by `temporary_prefix` are considered (atomic writes' temporary files, staging
    folders); one whose process is alive, or that was made on another host (e.g. over a shared
    file system), is kept. ``recursive`` also looks in the sub-folders (not in hidden ones, nor
    through links). Returns the removed paths.
    """
    removed: List[str] = []
    host = _host_tag()
    for folder, subfolders, files in _walk(parent, recursive):
        for name in subfolders + files:
            match = _TEMPORARY_PATTERN.match(name)
            path = os.path.join(folder, name)
            if match is None or match.group("host") != host or os.path.islink(path):
                continue
            pid = int(match.group("pid"))
            if pid == os.getpid() or pid_is_alive(pid):
                continue
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    pass
            if not os.path.lexists(path):
                removed.append(path)
    return removed


def _walk(parent: str, recursive: bool):
    """``(folder, subfolders, files)`` of ``parent`` (and, when ``recursive``, of its visible sub-folders)."""
    for folder, subfolders, files in os.walk(parent):
        yield folder, list(subfolders), files
        if not recursive:
            return
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]


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
