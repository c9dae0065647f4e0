"""Atomic writes: readers see the old file or folder or the new one, never a half-written one.

A file or folder is written under a sibling name `<path>.tmp-<pid>-<hex>` and renamed into place when
complete. A process killed meanwhile leaves only that temporary, which readers ignore and which the next
write of the same path (`remove_abandoned`) deletes once the process named in it no longer runs.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from typing import Any, Callable

TMP_MARKER = ".tmp-"


def temporary_name(path: str) -> str:
    """A sibling name for `path` that readers ignore (`<path>.tmp-<pid>-<hex>`)."""
    return f"{path}{TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_abandoned(folder: str, prefix: str) -> list[str]:
    """Removes the temporaries `<prefix>.tmp-<pid>-*` in `folder` whose writing process is gone; returns them.

    Temporaries of live processes (this one included) are left alone, so this is safe while others write.
    """
    if not os.path.isdir(folder):
        return []
    start = f"{prefix}{TMP_MARKER}"
    removed = []
    for entry in os.listdir(folder):
        if not entry.startswith(start):
            continue
        pid = entry[len(start):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            path = os.path.join(folder, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
            removed.append(path)
    return removed


def remove_abandoned_siblings(path: str) -> list[str]:
    """`remove_abandoned` for the temporaries of `path` itself (`<path>.tmp-<pid>-*`)."""
    parent, base = os.path.split(os.path.abspath(path))
    return remove_abandoned(parent, base)


def replace_folder(src: str, dst: str) -> None:
    """Moves the complete folder `src` to `dst`, replacing `dst` if it exists, never leaving `dst` half-written."""
    if os.path.exists(dst):
        old = temporary_name(dst)
        os.rename(dst, old)
        os.rename(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(src, dst)


def write_folder(path: str, write: Callable[[str], None]) -> str:
    """Runs `write(tmp)` into a temporary folder, then renames it to `path` (replacing any older one).

    If `write` raises, the temporary folder is removed and `path` is untouched; if the process is killed,
    the next `write_folder(path)` removes it. Returns `path`.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    remove_abandoned_siblings(path)
    tmp = temporary_name(path)
    os.makedirs(tmp)
    try:
        write(tmp)
        replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_json(path: str, value: Any, *, sort_keys: bool = False, default: Callable[[Any], Any] | None = None) -> str:
    """Writes `value` as JSON (indent 2, a final newline) to `path` atomically. Returns `path`.

    The one JSON writer of the project: records, reports and resumable state. `default` converts what JSON
    cannot hold (e.g. `float` for NumPy scalars, `str` for anything else).
    """
    return write_text(path, json.dumps(value, indent=2, sort_keys=sort_keys, default=default) + "\n")


def write_text(path: str, text: str) -> str:
    """Writes `text` (UTF-8) to `path` through a temporary file and `os.replace`. Returns `path`."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str, data: bytes) -> str:
    """Writes `data` to `path` through a temporary file and `os.replace`. Returns `path`."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    return write_file(path, write)


def write_file(path: str, write: Callable[[str], None]) -> str:
    """Runs `write(tmp)`, which writes a temporary file, then renames it to `path` (`os.replace`).

    The file counterpart of `write_folder`, for writers that take a path (`onnx.save`). If `write` raises, the
    temporary file is removed and `path` is untouched. Returns `path`.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    remove_abandoned_siblings(path)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
