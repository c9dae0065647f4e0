"""Atomic folder replacement: readers see the old folder or the new one, never a half-written one."""

from __future__ import annotations

import os
import shutil
import uuid

TMP_MARKER = ".tmp-"


def replace_folder(src: str, dst: str) -> None:
    """Moves the complete folder `src` to `dst`, replacing `dst` if it exists, never leaving `dst` half-written."""
    if os.path.exists(dst):
        old = f"{dst}{TMP_MARKER}old-{uuid.uuid4().hex[:8]}"
        os.rename(dst, old)
        os.rename(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(src, dst)
