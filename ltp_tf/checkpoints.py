"""Self-contained checkpoints: a model, its tokenizer vocabulary and what it was trained for, written atomically.

A checkpoint is a folder:

    model.keras        the Keras model (e.g. a `TokenPruningClassifier`), `.keras` format
    vocab.txt          the WordPiece vocabulary of the checkpoint's tokenizer (so exports tokenize alone)
    checkpoint.json    {"task": ..., "max_seq_length": ..., "lowercase": ..., plus any metadata}

It is written to a temporary sibling folder and renamed into place when complete, so a folder with the
final name is always whole; an interrupted write leaves only a `.tmp-*` folder, which readers ignore.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
import zlib
from typing import Any

import keras

from ltp_tf.atomic import write_folder

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"
METADATA_FILE = "checkpoint.json"
# What a `.keras` file (a zip archive) holds.
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the model, its folder, and its metadata (`task`, `max_seq_length`, ...)."""

    path: str
    model: keras.Model
    metadata: dict[str, Any]

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def max_seq_length(self) -> int:
        return int(self.metadata["max_seq_length"])

    @property
    def vocabulary_file(self) -> str:
        return os.path.join(self.path, VOCAB_FILE)


def is_complete(path: str) -> bool:
    """Whether `path` is a complete checkpoint folder."""
    return all(os.path.isfile(os.path.join(path, name)) for name in (MODEL_FILE, VOCAB_FILE, METADATA_FILE))


def check_checkpoint(path: str) -> dict[str, Any]:
    """Checks, without building the model, that `path` is a whole checkpoint; returns its metadata.

    Catches what a killed copy or a stray file leaves: a missing file, `checkpoint.json` that is not JSON,
    `model.keras` that is not a complete `.keras` archive (a zip with config, metadata and weights whose
    contents match their checksums).

    Raises:
        ValueError: naming the file that is wrong and how.
    """
    if not is_complete(path):
        missing = [n for n in (MODEL_FILE, VOCAB_FILE, METADATA_FILE) if not os.path.isfile(os.path.join(path, n))]
        raise ValueError(f"{path} is not a complete checkpoint: missing {missing}.")
    metadata_file = os.path.join(path, METADATA_FILE)
    try:
        with open(metadata_file, encoding="utf-8") as f:
            metadata = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{metadata_file} is not valid JSON ({error}).") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{metadata_file} must hold a JSON object. Received: {type(metadata).__name__}")
    model_file = os.path.join(path, MODEL_FILE)
    try:
        with zipfile.ZipFile(model_file) as archive:
            missing = [name for name in KERAS_MEMBERS if name not in archive.namelist()]
            if missing:
                raise ValueError(f"{model_file} is not a complete .keras model: it lacks {missing}.")
            corrupt = archive.testzip()
            if corrupt is not None:
                raise ValueError(f"{model_file} is corrupt: {corrupt} does not match its checksum.")
            json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{model_file} is not a loadable .keras model (truncated or not a Keras file: "
                         f"{error}).") from None
    return metadata


def save_checkpoint(path: str, model: keras.Model, *, task: str, max_seq_length: int, vocabulary_file: str,
                    metadata: dict[str, Any] | None = None) -> str:
    """Writes a checkpoint folder atomically (replacing an older one at `path`) and returns `path`."""
    if not os.path.isfile(vocabulary_file):
        raise FileNotFoundError(f"Vocabulary file not found: {vocabulary_file!r}")
    record = {"task": task, "max_seq_length": int(max_seq_length), **(metadata or {})}

    def write(folder: str) -> None:
        model.save(os.path.join(folder, MODEL_FILE))
        shutil.copyfile(vocabulary_file, os.path.join(folder, VOCAB_FILE))
        with open(os.path.join(folder, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2, sort_keys=True, default=str)

    return write_folder(os.path.abspath(path), write)


def load_checkpoint(path: str, compile: bool = False) -> Checkpoint:
    """Loads a checkpoint folder written by `save_checkpoint`."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Checkpoint folder not found: {path!r}")
    if not is_complete(path):
        missing = [n for n in (MODEL_FILE, VOCAB_FILE, METADATA_FILE) if not os.path.isfile(os.path.join(path, n))]
        raise FileNotFoundError(f"{path!r} is not a complete checkpoint: missing {missing}")
    import ltp_tf  # noqa: F401  (registers the serializable classes)

    model = keras.saving.load_model(os.path.join(path, MODEL_FILE), compile=compile)
    with open(os.path.join(path, METADATA_FILE), encoding="utf-8") as f:
        metadata = json.load(f)
    return Checkpoint(path=path, model=model, metadata=metadata)
