"""Synthetic GLUE-like data for the tiny training tests: a 40-word vocabulary and random token rows.

Labels are learnable from the first word (`token_ids[:, 1] >= 22`), so a short stage can move accuracy.
"""

from __future__ import annotations

import os

import numpy as np

from ltp_tf.data.features import LabeledFeatures
from ltp_tf.data.tokenization import TokenizedFeatures

VOCABULARY_SIZE = 40


def write_vocab(folder: str) -> str:
    """Writes the tiny WordPiece `vocab.txt` (special tokens, then `w0` … `w34`) into `folder`; returns its path."""
    path = os.path.join(folder, "vocab.txt")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCABULARY_SIZE - 5)]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(words) + "\n")
    return path


def random_features(rng: np.random.Generator, count: int, seq: int, min_length: int) -> TokenizedFeatures:
    """`count` rows of `seq` positions: `[CLS]`, then random words, padded after a random length >= `min_length`."""
    lengths = rng.integers(min_length, seq + 1, size=count)
    mask = np.arange(seq)[None, :] < lengths[:, None]
    token_ids = np.where(mask, rng.integers(5, VOCABULARY_SIZE, size=(count, seq)), 0).astype(np.int32)
    token_ids[:, 0] = 2
    return TokenizedFeatures(token_ids, np.zeros_like(token_ids), mask)


def random_split(rng: np.random.Generator, count: int, seq: int, min_length: int) -> LabeledFeatures:
    """`random_features` with labels learnable from the first word."""
    features = random_features(rng, count, seq, min_length)
    return LabeledFeatures(features, (features.token_ids[:, 1] >= 22).astype(np.int32))
