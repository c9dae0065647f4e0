"""The checkpoint's tokenizer as a keras_hub preprocessor (TensorFlow Text ops, traceable into a SavedModel).

The preprocessor is the checkpoint family's (`checkpoint.json` `family`): WordPiece for BERT and
DistilBERT, byte-level BPE for RoBERTa, SentencePiece for XLM-RoBERTa. BERT-style texts become
`[CLS] a [SEP]` (pairs: `[CLS] a [SEP] b [SEP]`, segment ids 0/1; RoBERTa-style `<s> a </s>`, pairs
`<s> a </s></s> b </s>`, no segment ids) and are truncated to
`max_seq_length` tokens including the special tokens (pairs: round-robin, the longer text loses tokens
first). It is built by the same function as training's (`ltp_tf.data.tokenization.preprocessor_from_metadata`),
so served text is tokenized exactly as the model was trained on.
"""

from __future__ import annotations

import numpy as np

from ltp_tf.checkpoints import Checkpoint
from ltp_tf.data.glue import GlueTask
from ltp_tf.data.tokenization import preprocessor_from_metadata


def checkpoint_preprocessor(checkpoint: Checkpoint):
    """The family's keras_hub text-classifier preprocessor with the checkpoint's tokenizer and `max_seq_length`."""
    return preprocessor_from_metadata(checkpoint.path, checkpoint.metadata, checkpoint.max_seq_length)


def training_features(checkpoint: Checkpoint, task: GlueTask, count: int,
                      data_dir: str | None = None) -> dict[str, np.ndarray]:
    """The first `count` training examples of `task`, tokenized as `checkpoint` tokenizes: `(count, seq)` arrays
    `token_ids`, `segment_ids`, `padding_mask` (what capacities are fitted on: not the data to be measured).

    Raises:
        FileNotFoundError: if `data_dir` (default: `ltp_tf.data.default_glue_dir()`) has no training split.
    """
    from ltp_tf.data import read_split, tokenize

    examples = read_split(task, "train", data_dir).take(count)
    return tokenize(checkpoint_preprocessor(checkpoint), examples.texts).as_dict()
