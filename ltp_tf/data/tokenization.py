"""Tokenization with the checkpoint's own keras_hub tokenizer (its family's) into NumPy features.

BERT-style single sentences become `[CLS] a [SEP]`, pairs `[CLS] a [SEP] b [SEP]` with segment ids 0/1;
RoBERTa-style `<s> a </s>` and `<s> a </s></s> b </s>` with segment ids all 0 (the family has none); ALBERT as
BERT. Tokenizer files keep their Hugging Face names in every folder (model, features, checkpoint): `vocab.txt`
(WordPiece), `vocab.json` + `merges.txt` (byte-level BPE), `sentencepiece.bpe.model` (XLM-R's SentencePiece),
`spiece.model` (ALBERT's SentencePiece; like keras_hub's, ours does not lowercase). Text longer
than `sequence_length` is truncated (round-robin over the two sentences of a pair, as keras_hub packs).
Features are NumPy arrays padded to `sequence_length`; batches are trimmed to their longest row later,
so padding costs nothing. No TensorFlow is needed to train on them (the JAX machine has none).

Every preprocessor is built from tokenizer files by one function, `preprocessor_from_files` (training from a
model folder or a checkpoint, serving, benchmarks), so training and serving tokenize identically.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ltp_tf.checkpoints import METADATA_FILE
from ltp_tf.families import EncoderFamily, get_family
from ltp_tf.validation import check_int_in_range

# WordPiece settings as training has always tokenized (keras_hub's `BertTokenizer`, which ignores a Hugging Face
# `strip_accents`): lowercase unless the model says otherwise, accents kept. The packaged (uncased) MiniLM's.
WORDPIECE_DEFAULTS = {"lowercase": True, "strip_accents": False}


@dataclasses.dataclass(frozen=True)
class TokenizedFeatures:
    """`token_ids`, `segment_ids` int32 and `padding_mask` bool, each `(examples, sequence_length)`."""

    token_ids: np.ndarray
    segment_ids: np.ndarray
    padding_mask: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return self.padding_mask.sum(axis=1).astype(np.int32)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"token_ids": self.token_ids, "segment_ids": self.segment_ids, "padding_mask": self.padding_mask}

    def select(self, index) -> "TokenizedFeatures":
        return TokenizedFeatures(self.token_ids[index], self.segment_ids[index], self.padding_mask[index])

    def save(self, path: str) -> None:
        np.savez_compressed(path, **self.as_dict())

    @classmethod
    def load(cls, path: str) -> "TokenizedFeatures":
        with np.load(path) as data:
            return cls(data["token_ids"], data["segment_ids"], data["padding_mask"])


def family_of_folder(model_dir: str) -> EncoderFamily:
    """The encoder family of a model folder (`model_type` of its Hugging Face `config.json`); BERT otherwise."""
    path = os.path.join(model_dir, "config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            model_type = json.load(f).get("model_type")
        if model_type is not None:
            return get_family(model_type)
    return get_family("bert")


def check_tokenizer_folder(model_dir: str):
    """The family of the local folder `model_dir`, after checking that its tokenizer files are there.

    Raises:
        FileNotFoundError: naming the missing files.
    """
    family = family_of_folder(model_dir)
    missing = [name for name in family.tokenizer_files if not os.path.isfile(os.path.join(model_dir, name))]
    if missing:
        raise FileNotFoundError(f"No {family.model_type} tokenizer in {model_dir!r}: expected "
                                f"{[os.path.join(model_dir, name) for name in missing]}")
    return family


def load_preprocessor(model_dir: str, sequence_length: int = 128):
    """The family's keras_hub text-classifier preprocessor for a model folder (`--model`), `sequence_length` set.

    A local Hugging Face folder goes through `preprocessor_from_files` (family from `config.json`, `lowercase`
    from the `do_lower_case` of `tokenizer_config.json`, default true), like every other folder. A keras_hub
    preset name (no files to read) loads the preset's own BERT tokenizer.
    """
    import keras_hub

    check_int_in_range("sequence_length", sequence_length, 8, 512)
    if os.path.isdir(model_dir):
        family = check_tokenizer_folder(model_dir)
        return preprocessor_from_files(model_dir, family.model_type, sequence_length,
                                       lowercase=_hf_lowercase(model_dir))
    tokenizer = keras_hub.models.BertTokenizer.from_preset(model_dir)
    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)


def preprocessor_from_metadata(folder: str, metadata: Mapping[str, Any], sequence_length: int):
    """The preprocessor a checkpoint recorded: its tokenizer files in `folder`, `family` and settings from `metadata`.

    `metadata` is the checkpoint's `checkpoint.json`. Training from a checkpoint (`--restore`) and serving
    (`ltp_tf.serving.text`) both build their preprocessor here, so they tokenize alike.
    """
    family = metadata.get("family", "bert")
    settings = tokenizer_settings(family, metadata, os.path.join(folder, METADATA_FILE))
    return preprocessor_from_files(folder, family, sequence_length, lowercase=settings.get("lowercase", True))


def tokenizer_settings(family: str, metadata: Mapping[str, Any], source: str) -> dict[str, bool]:
    """`lowercase` and `strip_accents` of a WordPiece family's tokenizer, from `metadata` (read from `source`).

    A missing setting takes the packaged MiniLM's (`WORDPIECE_DEFAULTS`), logged: a missing `lowercase` may be a
    real mismatch. Empty for families whose tokenizer has no such settings (BPE, SentencePiece).

    Raises:
        ValueError: a setting that is not true/false, or `strip_accents` true: training keeps accents (see
            `WORDPIECE_DEFAULTS`), so no model trained here has seen accent-stripped text.
    """
    settings = {}
    if get_family(family).tokenizer_files != ("vocab.txt",):
        return settings
    for key, default in WORDPIECE_DEFAULTS.items():
        value = metadata.get(key)
        if value is None:
            log = logging.warning if key == "lowercase" else logging.info
            log("%s has no %r; using %r (the packaged MiniLM's setting).", source, key, default)
            value = default
        if not isinstance(value, bool):
            raise ValueError(f"`{key}` in {source} must be true or false. Received: {key}={value!r}")
        settings[key] = value
    if settings["strip_accents"]:
        raise ValueError(f"`strip_accents` in {source} must be false: ltp_tf's WordPiece tokenizer keeps accents, "
                         "as it did when the model was trained. Received: strip_accents=True")
    return settings


def preprocessor_from_files(folder: str, family: str, sequence_length: int, lowercase: bool = True):
    """The family's keras_hub text-classifier preprocessor from its tokenizer files in `folder`.

    The one place a preprocessor is built from a vocabulary: a model folder (`load_preprocessor`: training,
    the pipeline's Transform, benchmarks) and a checkpoint (`preprocessor_from_metadata`: training's `--restore`
    and serving) both come here. WordPiece families lowercase as `lowercase` says and keep accents (`WORDPIECE_DEFAULTS`);
    `lowercase` does not apply to the others.
    """
    import keras_hub

    check_int_in_range("sequence_length", sequence_length, 8, 512)
    spec = get_family(family)
    files = [os.path.join(folder, name) for name in spec.tokenizer_files]
    tokenizer_cls = getattr(keras_hub.models, spec.hub_tokenizer)
    if spec.tokenizer_files == ("vocab.txt",):
        tokenizer = tokenizer_cls(vocabulary=files[0], lowercase=lowercase,
                                  strip_accents=WORDPIECE_DEFAULTS["strip_accents"])
    elif spec.tokenizer_files == ("vocab.json", "merges.txt"):
        tokenizer = tokenizer_cls(vocabulary=files[0], merges=files[1])
    else:
        tokenizer = tokenizer_cls(proto=files[0])
    return getattr(keras_hub.models, spec.hub_preprocessor)(tokenizer, sequence_length=sequence_length)


def write_tokenizer_files(tokenizer, family: str, folder: str) -> tuple[str, ...]:
    """Writes a keras_hub tokenizer's files into `folder` under the family's Hugging Face names; their paths.

    Each file is written atomically; `preprocessor_from_files(folder, family, ...)` reads them back.
    """
    from ltp_tf.atomic import write_text

    spec = get_family(family)
    paths = tuple(os.path.join(folder, name) for name in spec.tokenizer_files)
    if spec.tokenizer_files == ("vocab.txt",):
        write_text(paths[0], "\n".join(tokenizer.get_vocabulary()) + "\n")
    elif spec.tokenizer_files == ("vocab.json", "merges.txt"):
        # Not `write_json` (our records): a tokenizer file, compact and with its byte-level tokens unescaped.
        write_text(paths[0], json.dumps(dict(tokenizer.vocabulary), ensure_ascii=False))
        write_text(paths[1], "\n".join(tokenizer.merges) + "\n")  # as read, `#version` header included
    else:
        from ltp_tf.atomic import write_bytes

        write_bytes(paths[0], bytes(tokenizer.proto))
    return paths


def _hf_lowercase(model_dir: str) -> bool:
    """The `do_lower_case` of a Hugging Face folder's `tokenizer_config.json`; true when absent (as Hugging Face)."""
    path = os.path.join(model_dir, "tokenizer_config.json")
    if not os.path.isfile(path):
        return True
    with open(path, encoding="utf-8") as f:
        return bool(json.load(f).get("do_lower_case", True))


def tokenize(preprocessor, texts: tuple[tuple[str, ...], ...] | tuple[list[str], ...],
             batch_size: int = 1024) -> TokenizedFeatures:
    """Tokenizes one or two text columns into padded NumPy features."""
    if not texts or not len(texts[0]):
        raise ValueError("Cannot tokenize an empty batch of texts.")
    if len(texts) > 2:
        raise ValueError(f"Expected one or two text columns. Received: {len(texts)}")
    pieces = {"token_ids": [], "segment_ids": [], "padding_mask": []}
    for start in range(0, len(texts[0]), batch_size):
        chunk = tuple(list(column[start:start + batch_size]) for column in texts)
        # Keyword `x`: a positional tuple would be read as (x, y).
        features = preprocessor(x=chunk[0] if len(chunk) == 1 else chunk)
        if "segment_ids" not in features:  # families without segments (RoBERTa, DistilBERT)
            features = {**features, "segment_ids": np.zeros(np.shape(features["token_ids"]), np.int32)}
        for key in pieces:
            pieces[key].append(np.asarray(features[key]))
    return TokenizedFeatures(
        token_ids=np.concatenate(pieces["token_ids"]).astype(np.int32),
        segment_ids=np.concatenate(pieces["segment_ids"]).astype(np.int32),
        padding_mask=np.concatenate(pieces["padding_mask"]).astype(bool),
    )


def trim_to_longest(features: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cuts a batch's padding down to its longest row."""
    longest = max(int(features["padding_mask"].sum(axis=1).max()), 1)
    return {key: value[:, :longest] for key, value in features.items()}


def concatenated_windows(features: Mapping[str, np.ndarray], length: int, count: int) -> dict[str, np.ndarray]:
    """`count` inputs of exactly `length` tokens made of real text: `[CLS]` + the consecutive tokens of
    `features`' rows (without their own `[CLS]`/`[SEP]` and padding, concatenated and reused cyclically if
    too few) + `[SEP]`, one segment. Long inputs for benchmarks (from dev text) and for fitting an export's
    capacities (from training text) where the data has no rows that long."""
    if length < 3 or count < 1:
        raise ValueError(f"`length` must be >= 3 and `count` >= 1. Received: length={length}, count={count}")
    mask = features["padding_mask"] > 0
    cls, sep = int(features["token_ids"][0, 0]), int(features["token_ids"][0, mask[0].sum() - 1])
    stream = np.concatenate([row[m][1:-1] for row, m in zip(features["token_ids"], mask)])
    stream = stream[(stream != cls) & (stream != sep)]
    body = np.resize(stream, count * (length - 2)).reshape(count, length - 2)
    ids = np.concatenate([np.full((count, 1), cls), body, np.full((count, 1), sep)], axis=1).astype(np.int32)
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
