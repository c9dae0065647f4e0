"""Atomic writes: readers see the old file or folder or the new one, never a half-written one."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Callable

TMP_MARKER = ".tmp-"


def temporary_name(path: str) -> str:
    """A sibling name for `path` that readers ignore (`<path>.tmp-<hex>`)."""
    return f"{path}{TMP_MARKER}{uuid.uuid4().hex[:8]}"


def replace_folder(src: str, dst: str) -> None:
    """Moves the complete folder `src` to `dst`, replacing `dst` if it exists, never leaving `dst` half-written."""
    if os.path.exists(dst):
        old = f"{dst}{TMP_MARKER}old-{uuid.uuid4().hex[:8]}"
        os.rename(dst, old)
        os.rename(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(src, dst)


def write_folder(path: str, write: Callable[[str], None]) -> str:
    """Runs `write(tmp)` into a temporary folder, then renames it to `path` (replacing any older one).

    If `write` raises (or the process is interrupted), the temporary folder is removed and `path` is
    untouched. Returns `path`.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_name(path)
    os.makedirs(tmp)
    try:
        write(tmp)
        replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_text(path: str, text: str) -> str:
    """Writes `text` (UTF-8) to `path` through a temporary file and `os.replace`. Returns `path`."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str, data: bytes) -> str:
    """Writes `data` to `path` through a temporary file and `os.replace`. Returns `path`."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
