"""Tokenization with the checkpoint's own keras_hub WordPiece tokenizer into NumPy features.

Single sentences become `[CLS] a [SEP]`, pairs `[CLS] a [SEP] b [SEP]` with segment ids 0/1. Text longer
than `sequence_length` is truncated (round-robin over the two sentences of a pair, as keras_hub packs).
Features are NumPy arrays padded to `sequence_length`; batches are trimmed to their longest row later,
so padding costs nothing. No TensorFlow is needed to train on them (the JAX machine has none).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np


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


def load_preprocessor(model_dir: str, sequence_length: int = 128):
    """keras_hub's `BertTextClassifierPreprocessor` with the checkpoint's vocabulary, `sequence_length` set."""
    import keras_hub

    if not isinstance(sequence_length, int) or not 8 <= sequence_length <= 512:
        raise ValueError(f"`sequence_length` must be an integer in [8, 512]. Received: sequence_length={sequence_length!r}")
    if os.path.isdir(model_dir) and not os.path.isfile(os.path.join(model_dir, "vocab.txt")):
        raise FileNotFoundError(f"No WordPiece vocabulary in {model_dir!r}: expected {model_dir}/vocab.txt")
    tokenizer = keras_hub.models.BertTokenizer.from_preset(model_dir)
    return keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)


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
