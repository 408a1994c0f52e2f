"""One process at a time per output folder.

Every command that writes a folder (a training run, enhanced images, a report, an export's model
folder, a segmenter, the demo's output) first *claims* it with `claim_folder`: the folder is
created if needed, a lock file ``.ssp-net.lock`` is created in it (which also proves the folder is
writable) and locked with ``flock``. A second process claiming the same folder is refused with one
line naming the holder (`InputError`, exit 2). The operating system releases a ``flock`` when its
process dies, however it dies (``kill -9`` included), so a crash never leaves a folder locked.

While a folder is claimed nobody else writes in it, so the claim is also when temporary files and
staging folders of killed processes are removed (`ssp_keras.utils.files.remove_stale_temporaries`).

Claims are re-entrant within one process (the command line claims ``--out`` before loading a model,
the library function it then calls claims it again), and a folder the claim created is removed
again when the work fails before anything was written into it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import socket
import threading
import time
from typing import Callable, Dict, Iterator, Optional

from ssp_keras.errors import InputError

logger = logging.getLogger(__name__)

#: The lock file inside a claimed folder (hidden: image listings and TF Serving ignore it).
LOCK_FILE = ".ssp-net.lock"

_HELD: Dict[str, list] = {}  # real path of a claimed folder -> [lock file descriptor, depth]
_HELD_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class FolderClaim:
    """A claimed folder: ``removed`` lists what killed processes had left in it (now gone)."""

    folder: str
    removed: tuple = ()


@contextlib.contextmanager
def claim_folder(folder, purpose: str, option: str = "--out",
                 report: Optional[Callable[[str], None]] = None) -> Iterator[FolderClaim]:
    """Makes ``folder`` (if needed) and holds it for this process for the duration of the block.

    purpose: what the holder does, shown to a process that is refused (``"ssp-net enhance"``).
    option: how error messages name the folder (``--out``, ``--base``).
    report: called with the path of each temporary file or folder of a killed process removed
      from ``folder`` (default: a logged warning naming it).
    Raises `InputError` (one line) when another process holds the folder, or when it cannot be
    created or written (a file in the way, no permission, a read-only file system).
    """
    from ssp_keras.utils.files import remove_stale_temporaries

    folder = os.fspath(folder)
    created = _make_folder(folder, option)
    key = os.path.realpath(folder)
    with _HELD_LOCK:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
    if held is not None:  # re-entrant: this process holds it already
        try:
            yield FolderClaim(folder)
        finally:
            with _HELD_LOCK:
                held[1] -= 1
        return
    try:
        descriptor = _lock(folder, purpose, option)
    except BaseException:
        _remove_if_empty(folder, created)
        raise
    with _HELD_LOCK:
        _HELD[key] = [descriptor, 1]
    removed = remove_stale_temporaries(folder, recursive=True)
    for path in removed:
        if report is not None:
            report(path)
        else:
            logger.warning("removed '%s', left by a process that no longer runs", path)
    try:
        yield FolderClaim(folder, tuple(removed))
    except BaseException:
        _release(key, folder)
        _remove_if_empty(folder, created)
        raise
    _release(key, folder)


def _make_folder(folder: str, option: str) -> Optional[str]:
    """Creates ``folder`` and its parents: the topmost folder created (None: it existed).

    `InputError` when it cannot be created (a file in the way, no permission, read-only).
    """
    from ssp_keras.utils.files import check_folder_creatable

    if os.path.isdir(folder):
        return None
    check_folder_creatable(folder, option)
    topmost = os.path.abspath(folder)
    while not os.path.exists(os.path.dirname(topmost)) and os.path.dirname(topmost) != topmost:
        topmost = os.path.dirname(topmost)
    try:
        os.makedirs(folder)
    except FileExistsError:
        check_folder_creatable(folder, option)  # a file appeared meanwhile: say so
        return None
    except OSError as error:
        raise InputError(f"{option} '{folder}' cannot be created: {describe_os_error(error)}") from None
    return topmost


def _lock(folder: str, purpose: str, option: str) -> int:
    """Opens and ``flock``s the lock file of ``folder``; its descriptor. `InputError` when held or unwritable."""
    import fcntl

    path = os.path.join(folder, LOCK_FILE)
    while True:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as error:
            raise InputError(f"cannot write into {option} '{folder}': {describe_os_error(error)}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(
                    f"{option} '{folder}' is in use by another process ({_holder(path)}): wait until it "
                    f"has finished, or choose another {option}"
                ) from None
            raise InputError(f"cannot lock {option} '{folder}': {describe_os_error(error)}") from None
        # The previous holder may have removed the file between our open and our lock: then the
        # lock is on a file nobody else will see; start again with the file now there.
        try:
            same = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except OSError:
            same = False
        if same:
            break
        os.close(descriptor)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
              "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        os.ftruncate(descriptor, 0)
        os.write(descriptor, (json.dumps(record) + "\n").encode("utf-8"))
    except OSError as error:  # e.g. a full disk: the folder cannot take outputs either
        os.close(descriptor)
        raise InputError(f"cannot write into {option} '{folder}': {describe_os_error(error)}") from None
    return descriptor


def _holder(path: str) -> str:
    """Who holds the lock file ``path``, from what it wrote there."""
    try:
        with open(path, encoding="utf-8") as stream:
            record = json.loads(stream.read() or "{}")
        return f"pid {record['pid']} on {record['host']}: {record['purpose']}, since {record['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another ssp-net command"


def _release(key: str, folder: str) -> None:
    with _HELD_LOCK:
        held = _HELD.get(key)
        held[1] -= 1
        if held[1] > 0:
            return
        del _HELD[key]
    descriptor = held[0]
    try:  # unlinked while still locked, so no other process can lock this file afterwards
        os.remove(os.path.join(folder, LOCK_FILE))
    except OSError:
        pass
    os.close(descriptor)


def _remove_if_empty(folder: str, created: Optional[str]) -> None:
    """Removes ``folder``, and the parents this claim created with it up to ``created``, when
    nothing was written into them (a command that failed before its first output)."""
    if created is None:
        return
    with contextlib.suppress(OSError):
        os.remove(os.path.join(folder, LOCK_FILE))
    current = os.path.abspath(folder)
    while True:
        try:
            os.rmdir(current)  # only an empty folder goes
        except OSError:
            return
        if current == created:
            return
        current = os.path.dirname(current)


def describe_os_error(error: OSError) -> str:
    """``strerror`` of an `OSError` without the path it may repeat (``Permission denied``)."""
    return error.strerror or str(error) or type(error).__name__
