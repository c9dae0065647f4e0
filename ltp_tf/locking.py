"""Exclusive locks on output folders, so two runs never write one folder at once.

A run holds `<folder>/.lock` with `fcntl.flock` while it writes the folder, and writes its pid into it
for the message a second run gets. The kernel releases the lock when the holder exits, however it
exits (kill -9 included), so a lock file left behind by a dead process never blocks the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator

LOCK_FILE = ".lock"


class FolderLockedError(RuntimeError):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def exclusive_lock(folder: str, holder: str) -> Iterator[str]:
    """Holds `<folder>/.lock` (creating `folder`) for the `with` block; yields the lock file's path.

    Args:
        folder: the folder to lock.
        holder: what holds such locks, for the error message (e.g. "ltp_tf.train run").

    Raises:
        FolderLockedError: at once (no waiting), naming the lock file and the holder's pid.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, LOCK_FILE)
    with open(path, "a+", encoding="utf-8") as handle:  # "a+": opening must not erase the holder's pid
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise FolderLockedError(f"{path} is held by another {holder} (pid {pid}); wait for it to finish, or "
                                    "choose another folder.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield path
        finally:
            handle.truncate(0)  # the pid is only meaningful while held
