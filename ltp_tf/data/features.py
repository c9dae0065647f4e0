"""Training data as NumPy features: tokenized GLUE splits, in memory or in a `--features_dir` folder.

A features folder holds everything training needs and nothing that needs TensorFlow to read (the JAX
GPU machine has no TensorFlow text ops):

    features.json     {"task", "max_seq_length", "lowercase", "family", "splits": {split: examples}, "source"}
    vocab.txt         the tokenizer's files (checkpoints copy them): `vocab.txt` for WordPiece families, else
                      the family's (`vocab.json` + `merges.txt`, `sentencepiece.bpe.model`; see `ltp_tf.families`)
    <split>.npz       token_ids, segment_ids, padding_mask (`TokenizedFeatures`) and labels

It is written to a temporary folder and renamed into place, so a folder with the final name is whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Mapping
from typing import Any

import numpy as np

from ltp_tf.atomic import write_folder, write_json, write_text
from ltp_tf.checkpoints import VOCAB_FILE
from ltp_tf.data.glue import GlueTask, read_split, split_path
from ltp_tf.data.sources import read_examples
from ltp_tf.data.tokenization import (TokenizedFeatures, family_of_folder, load_preprocessor, preprocessor_from_metadata,
                                      tokenize, write_tokenizer_files)
from ltp_tf.families import get_family

FEATURES_FILE = "features.json"


@dataclasses.dataclass(frozen=True)
class LabeledFeatures:
    """A tokenized split: features and labels (int class ids, or float scores for regression)."""

    features: TokenizedFeatures
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, index: np.ndarray) -> "LabeledFeatures":
        return LabeledFeatures(self.features.select(index), self.labels[index])


@dataclasses.dataclass(frozen=True)
class TaskData:
    """Everything a run trains and evaluates on: train split, dev splits, and the tokenizer's files.

    `vocabulary_file` is the `vocab.txt` path of WordPiece families, else a tuple of the family's files.
    """

    task: GlueTask
    max_seq_length: int
    train: LabeledFeatures
    dev: dict[str, LabeledFeatures]
    vocabulary_file: str | tuple[str, ...]
    lowercase: bool
    family: str = "bert"


class Tokenizer:
    """The checkpoint's own keras_hub tokenizer (its family's), packing sentences (or pairs) to `max_seq_length`.

    Built from a model folder or preset (`--model`) or from a checkpoint's tokenizer files (`--restore`).
    """

    def __init__(self, preprocessor, family: str = "bert"):
        self.preprocessor = preprocessor
        self.family = family

    @classmethod
    def from_model(cls, model: str, max_seq_length: int) -> "Tokenizer":
        family = family_of_folder(model).model_type if os.path.isdir(model) else "bert"
        return cls(load_preprocessor(model, sequence_length=max_seq_length), family)

    @classmethod
    def from_checkpoint(cls, folder: str, metadata: Mapping[str, Any], max_seq_length: int) -> "Tokenizer":
        """From a checkpoint's tokenizer files and `checkpoint.json` (`metadata`), as serving builds it."""
        return cls(preprocessor_from_metadata(folder, metadata, max_seq_length), metadata.get("family", "bert"))

    @property
    def lowercase(self) -> bool:
        return bool(getattr(self.preprocessor.tokenizer, "lowercase", False))

    def write_vocabulary(self, path: str) -> None:
        """Writes the vocabulary, one token a line, atomically."""
        write_text(path, "\n".join(self.preprocessor.tokenizer.get_vocabulary()) + "\n")

    def write_files(self, folder: str) -> str | tuple[str, ...]:
        """Writes the tokenizer's files into `folder` (atomically each); `TaskData.vocabulary_file` for them."""
        paths = write_tokenizer_files(self.preprocessor.tokenizer, self.family, folder)
        return paths[0] if paths == (os.path.join(folder, VOCAB_FILE),) else paths

    def __call__(self, texts) -> TokenizedFeatures:
        return tokenize(self.preprocessor, texts)


def tokenize_task(task: GlueTask, tokenizer: Tokenizer, data_dir: str | None, max_seq_length: int,
                  vocabulary_file: str, train_index_fn=None, max_eval_examples: int | None = None,
                  data_source: str = "tsv") -> TaskData:
    """Reads and tokenizes the train and dev splits of `task`.

    Args:
        train_index_fn: maps the number of train examples to the indices to keep (a subset), or None for all.
        max_eval_examples: keep only the first N examples of each dev split.
    """
    train = read_examples(task, "train", data_dir, data_source)
    if train_index_fn is not None:
        index = train_index_fn(len(train))
        train = dataclasses.replace(train, texts=tuple(tuple(np.asarray(c, dtype=object)[index]) for c in train.texts),
                                    labels=train.labels[index])
    dev = {}
    for split in task.dev_splits:
        examples = read_examples(task, split, data_dir, data_source)
        if max_eval_examples is not None:
            examples = examples.take(max_eval_examples)
        dev[split] = LabeledFeatures(tokenizer(examples.texts), examples.labels)
    return TaskData(task=task, max_seq_length=max_seq_length, train=LabeledFeatures(tokenizer(train.texts), train.labels),
                    dev=dev, vocabulary_file=vocabulary_file, lowercase=tokenizer.lowercase, family=tokenizer.family)


def check_splits(task: GlueTask, data_dir: str | None) -> None:
    """Reads every split file of `task` once, before any work starts, so bad data fails first.

    Raises:
        FileNotFoundError: naming the first missing split file.
        ValueError: naming file and line of the first bad row (`ltp_tf.data.glue.read_split`).
    """
    for split in ("train",) + task.dev_splits:
        path = split_path(task, split, data_dir)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"GLUE {task.folder} {split} split not found: expected {path}. Point --data_dir at a folder in the "
                "standard glue_data layout (<dir>/<TASK>/{train,dev}.tsv), or --features_dir at tokenized features.")
    for split in ("train",) + task.dev_splits:
        read_split(task, split, data_dir)


def save_features(path: str, data: TaskData, source: dict) -> str:
    """Writes `data` as a features folder at `path` (atomically, replacing an older one)."""
    splits = {"train": data.train, **data.dev}
    record = {"task": data.task.name, "max_seq_length": data.max_seq_length, "lowercase": data.lowercase,
              "family": data.family, "splits": {split: len(values) for split, values in splits.items()}, "source": source}

    def write(folder: str) -> None:
        for split, values in splits.items():
            np.savez_compressed(os.path.join(folder, f"{split}.npz"), labels=values.labels,
                                **values.features.as_dict())
        if isinstance(data.vocabulary_file, str):
            shutil.copyfile(data.vocabulary_file, os.path.join(folder, VOCAB_FILE))
        else:
            for file in data.vocabulary_file:
                shutil.copyfile(file, os.path.join(folder, os.path.basename(file)))
        write_json(os.path.join(folder, FEATURES_FILE), record, sort_keys=True)

    return write_folder(os.path.abspath(path), write)


def read_features_record(path: str) -> dict | None:
    """The `features.json` of a features folder, or None if there is no complete folder at `path`."""
    record = os.path.join(path, FEATURES_FILE)
    if not os.path.isfile(record):
        return None
    with open(record, encoding="utf-8") as f:
        return json.load(f)


def check_features(path: str, task: GlueTask, max_seq_length: int) -> dict:
    """The record of the features folder at `path`, checked against the run's task and sequence length."""
    record = read_features_record(path)
    if record is None:
        raise FileNotFoundError(f"No tokenized features at {path}: expected {os.path.join(path, FEATURES_FILE)}. "
                                "Write them with `--stages=tokenize --features_dir=...`.")
    if record["task"] != task.name or record["max_seq_length"] != max_seq_length:
        raise ValueError(f"The features at {path} are for task={record['task']}, max_seq_length="
                         f"{record['max_seq_length']}; this run has --task={task.name} --max_seq_length={max_seq_length}. "
                         "Use matching flags or another --features_dir.")
    missing = [s for s in ("train",) + task.dev_splits if s not in record["splits"]]
    if missing:
        raise ValueError(f"The features at {path} lack the split(s) {missing} that {task.name} needs.")
    return record


def load_features(path: str, task: GlueTask, max_seq_length: int, train_index_fn=None,
                  max_eval_examples: int | None = None) -> TaskData:
    """Reads a features folder written by `save_features` (NumPy only)."""
    record = check_features(path, task, max_seq_length)

    def read(split: str) -> LabeledFeatures:
        file = os.path.join(path, f"{split}.npz")
        with np.load(file) as arrays:
            return LabeledFeatures(TokenizedFeatures(arrays["token_ids"], arrays["segment_ids"],
                                                     arrays["padding_mask"]), arrays["labels"])

    train = read("train")
    if train_index_fn is not None:
        train = train.select(train_index_fn(len(train)))
    dev = {}
    for split in task.dev_splits:
        values = read(split)
        if max_eval_examples is not None:
            values = values.select(np.arange(min(max_eval_examples, len(values))))
        dev[split] = values
    family = record.get("family", "bert")
    files = tuple(os.path.join(path, name) for name in get_family(family).tokenizer_files)
    return TaskData(task=task, max_seq_length=max_seq_length, train=train, dev=dev,
                    vocabulary_file=files[0] if files == (os.path.join(path, VOCAB_FILE),) else files,
                    lowercase=bool(record["lowercase"]), family=family)


def subset_indices(total: int, max_examples: int | None, seed: int) -> np.ndarray:
    """A fixed random subset of `max_examples` of `total` indices (in file order), or all of them."""
    if max_examples is None or max_examples >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).permutation(total)[:max_examples])
