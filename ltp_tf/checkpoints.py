"""Self-contained checkpoints: a model, its tokenizer files and what it was trained for, written atomically.

A checkpoint is a folder:

    model.keras        the Keras model (e.g. a `TokenPruningClassifier`), `.keras` format
    vocab.txt          the tokenizer's files (so exports tokenize alone), under their Hugging Face names:
                       `vocab.txt` (WordPiece: BERT, DistilBERT), `vocab.json` + `merges.txt` (RoBERTa),
                       `sentencepiece.bpe.model` (XLM-RoBERTa), `spiece.model` (ALBERT)
    checkpoint.json    {"task": ..., "max_seq_length": ..., "family": ..., "lowercase": ..., plus any metadata}

`family` is the model's encoder family (`ltp_tf.families`; absent in older checkpoints: BERT). Training
adds `stage`, `pruning_config`, `dev_metrics`, `report`, `settings`, `fingerprint` and `train_config`
(`ltp_tf.training.stages`). `read_checkpoint_info` is the one reader of `checkpoint.json`.

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
from typing import Any, Sequence

import keras

from ltp_tf.atomic import write_folder, write_json
from ltp_tf.families import get_family

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"
METADATA_FILE = "checkpoint.json"
# What a `.keras` file (a zip archive) holds.
KERAS_MEMBERS = ("config.json", "metadata.json", "model.weights.h5")


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint folder and its `checkpoint.json` (`metadata`), read without loading the model."""

    path: str
    metadata: dict[str, Any]

    @property
    def task(self) -> str:
        return self.metadata["task"]

    @property
    def max_seq_length(self) -> int:
        return int(self.metadata["max_seq_length"])

    @property
    def family(self) -> str:
        """The encoder family (`model_type`) of the model and its tokenizer."""
        return self.metadata.get("family", "bert")

    @property
    def stage(self) -> str | None:
        """The training stage that wrote it (`finetune`, `soft`, ...), None when not written by training."""
        return self.metadata.get("stage")

    @property
    def prune_mode(self) -> str | None:
        """The token pruning mode it was trained with (`none` for a dense model), None when not recorded."""
        return self.metadata.get("pruning_config", {}).get("prune_mode")

    @property
    def vocabulary_file(self) -> str:
        return os.path.join(self.path, VOCAB_FILE)

    @property
    def tokenizer_files(self) -> tuple[str, ...]:
        """Paths of the tokenizer's files (`save_checkpoint(vocabulary_file=...)` takes them as they are)."""
        return tuple(os.path.join(self.path, name) for name in get_family(self.family).tokenizer_files)


@dataclasses.dataclass(frozen=True)
class Checkpoint(CheckpointInfo):
    """A loaded checkpoint: its folder and metadata (`task`, `max_seq_length`, ...) and the model."""

    model: keras.Model


def read_checkpoint_info(path: str) -> CheckpointInfo:
    """Reads the `checkpoint.json` of the checkpoint folder `path` (the model is not loaded).

    Raises:
        FileNotFoundError: `path` holds no `checkpoint.json`.
        ValueError: it is not valid JSON, not a JSON object, or lacks a valid `task`, `max_seq_length` or
            `family`.
    """
    file = os.path.join(path, METADATA_FILE)
    try:
        with open(file, encoding="utf-8") as f:
            metadata = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is not a checkpoint folder: {METADATA_FILE} not found.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON ({error}).") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{file} must hold a JSON object. Received: {type(metadata).__name__}")
    task, max_seq_length = metadata.get("task"), metadata.get("max_seq_length")
    if not isinstance(task, str):
        raise ValueError(f"`task` in {file} must be a task name. Received: task={task!r}")
    if isinstance(max_seq_length, bool) or not isinstance(max_seq_length, int) or max_seq_length < 1:
        raise ValueError(f"`max_seq_length` in {file} must be an integer >= 1. Received: "
                         f"max_seq_length={max_seq_length!r}")
    try:
        get_family(metadata.get("family", "bert"))
    except ValueError as error:
        raise ValueError(f"`family` in {file}: {error}") from None
    return CheckpointInfo(path=path, metadata=metadata)


def _required_files(path: str) -> tuple[str, ...]:
    try:
        family = read_checkpoint_info(path).family
    except (OSError, ValueError):  # no readable checkpoint.json: `check_checkpoint` says why
        family = "bert"
    return (MODEL_FILE, METADATA_FILE) + get_family(family).tokenizer_files


def _missing_files(path: str) -> list[str]:
    return [name for name in _required_files(path) if not os.path.isfile(os.path.join(path, name))]


def is_complete(path: str) -> bool:
    """Whether `path` is a complete checkpoint folder."""
    return not _missing_files(path)


def check_checkpoint(path: str) -> CheckpointInfo:
    """Checks, without building the model, that `path` is a whole checkpoint; returns its info.

    Catches what a killed copy or a stray file leaves: a missing file, `checkpoint.json` that is not JSON,
    `model.keras` that is not a complete `.keras` archive (a zip with config, metadata and weights whose
    contents match their checksums).

    Raises:
        ValueError: naming the file that is wrong and how.
    """
    missing = _missing_files(path)
    if missing:
        raise ValueError(f"{path} is not a complete checkpoint: missing {missing}.")
    info = read_checkpoint_info(path)
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
    return info


def save_checkpoint(path: str, model: keras.Model, *, task: str, max_seq_length: int,
                    vocabulary_file: str | Sequence[str], metadata: dict[str, Any] | None = None) -> str:
    """Writes a checkpoint folder atomically (replacing an older one at `path`) and returns `path`.

    `vocabulary_file`: the WordPiece `vocab.txt` (copied as `vocab.txt`), or the tokenizer's files
    (copied under their own names, which must be the family's). The model's family is recorded.
    """
    files = (vocabulary_file,) if isinstance(vocabulary_file, str) else tuple(vocabulary_file)
    family = getattr(getattr(model, "backbone", None), "family", "bert")
    names = (VOCAB_FILE,) if isinstance(vocabulary_file, str) else tuple(os.path.basename(f) for f in files)
    for file in files:
        if not os.path.isfile(file):
            raise FileNotFoundError(f"Vocabulary file not found: {file!r}")
    if sorted(names) != sorted(get_family(family).tokenizer_files):
        raise ValueError(f"A {family} checkpoint needs the tokenizer files {list(get_family(family).tokenizer_files)}. "
                         f"Received: {list(files)}")
    # The explicit fields win over `metadata` (which may be another checkpoint's, copied with its own length).
    record = {**(metadata or {}), "task": task, "max_seq_length": int(max_seq_length), "family": family}

    def write(folder: str) -> None:
        model.save(os.path.join(folder, MODEL_FILE))
        for file, name in zip(files, names):
            shutil.copyfile(file, os.path.join(folder, name))
        write_json(os.path.join(folder, METADATA_FILE), record, sort_keys=True, default=str)

    return write_folder(os.path.abspath(path), write)


def load_checkpoint(path: str, compile: bool = False) -> Checkpoint:
    """Loads a checkpoint folder written by `save_checkpoint`."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"Checkpoint folder not found: {path!r}")
    missing = _missing_files(path)
    if missing:
        raise FileNotFoundError(f"{path!r} is not a complete checkpoint: missing {missing}")
    info = read_checkpoint_info(path)
    import ltp_tf  # noqa: F401  (registers the serializable classes)

    model = keras.saving.load_model(os.path.join(path, MODEL_FILE), compile=compile)
    return Checkpoint(path=path, metadata=info.metadata, model=model)
