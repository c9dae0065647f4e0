"""TF Serving model folders: `<export_dir>/<name>/<version>/`, published atomically, and `models.config`.

TF Serving loads every all-digit subfolder of a model's base path as a version (the highest by
default). A version is written under a staging name `.tmp-<pid>-<random>` inside the model folder —
never an integer, so TF Serving never loads it — and renamed to the next free version number only when
complete. An interrupted export therefore leaves at most a staging folder, which the next export removes
once the process that wrote it is gone. `models.config` (a `ModelServerConfig` in text format) lists every
model folder with at least one complete version; it is rewritten through a temporary file and
`os.replace`, so readers see the old or the new file, never half of one.
"""

from __future__ import annotations

import os
import re

from ltp_tf.atomic import TMP_MARKER, remove_abandoned, temporary_name, write_text

STAGING_PREFIX = TMP_MARKER  # staging folders are `<model_dir>/.tmp-<pid>-<hex>`
MODELS_CONFIG = "models.config"
SAVED_MODEL_FILE = "saved_model.pb"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_model_name(name: str) -> str:
    """`name` if it is a valid model name (letters, digits, `_`, `.`, `-`; not starting with a symbol)."""
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError("`name` must be letters, digits, '_', '.' or '-', starting with a letter or digit. "
                         f"Received: name={name!r}")
    return name


def versions(model_dir: str) -> list[int]:
    """The complete versions in a model folder (all-digit subfolders holding a `saved_model.pb`), sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(entry) for entry in os.listdir(model_dir)
                  if entry.isdigit() and os.path.isfile(os.path.join(model_dir, entry, SAVED_MODEL_FILE)))


def new_staging_folder(model_dir: str) -> str:
    """Creates and returns an empty staging folder in `model_dir` (removing abandoned ones first)."""
    os.makedirs(model_dir, exist_ok=True)
    remove_abandoned_staging(model_dir)
    path = temporary_name(os.path.join(model_dir, ""))  # `<model_dir>/.tmp-<pid>-<hex>`
    os.mkdir(path)
    return path


def remove_abandoned_staging(model_dir: str) -> list[str]:
    """Removes staging folders whose writing process no longer runs; returns their paths."""
    return remove_abandoned(model_dir, "")


def publish(staging: str, model_dir: str) -> str:
    """Renames a complete staging folder to the next version number of `model_dir`; returns its path."""
    if not os.path.isfile(os.path.join(staging, SAVED_MODEL_FILE)):
        raise ValueError(f"{staging} holds no {SAVED_MODEL_FILE}: refusing to publish an incomplete export.")
    version = max(_used_numbers(model_dir), default=0)
    while True:
        version += 1
        target = os.path.join(model_dir, str(version))
        if os.path.exists(target):
            continue
        try:
            os.rename(staging, target)
            return target
        except OSError:
            if not os.path.exists(target):
                raise  # a real failure, not another export taking this number meanwhile


def model_names(export_dir: str) -> list[str]:
    """Model folders in `export_dir` with at least one complete version, sorted."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(entry for entry in os.listdir(export_dir)
                  if _NAME_PATTERN.match(entry) and versions(os.path.join(export_dir, entry)))


def render_models_config(names: list[str], base_path: str) -> str:
    """A TF Serving `ModelServerConfig` (text format) serving each model from `<base_path>/<name>`."""
    entries = "".join(
        "  config {\n"
        f"    name: \"{name}\"\n"
        f"    base_path: \"{base_path.rstrip('/')}/{name}\"\n"
        "    model_platform: \"tensorflow\"\n"
        "  }\n"
        for name in names)
    return f"model_config_list {{\n{entries}}}\n"


def write_models_config(export_dir: str, base_path: str = "/models") -> str:
    """Regenerates `<export_dir>/models.config` atomically from the model folders; returns its path."""
    return write_text(os.path.join(export_dir, MODELS_CONFIG), render_models_config(model_names(export_dir), base_path))


def _used_numbers(model_dir: str) -> list[int]:
    return [int(entry) for entry in os.listdir(model_dir) if entry.isdigit()]

