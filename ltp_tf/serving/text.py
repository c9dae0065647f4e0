"""The checkpoint's tokenizer as a keras_hub preprocessor (TensorFlow Text ops, traceable into a SavedModel).

The preprocessor is the checkpoint family's (`checkpoint.json` `family`): WordPiece for BERT and
DistilBERT, byte-level BPE for RoBERTa, SentencePiece for XLM-RoBERTa. BERT-style texts become
`[CLS] a [SEP]` (pairs: `[CLS] a [SEP] b [SEP]`, segment ids 0/1; RoBERTa-style `<s> a </s>`, pairs
`<s> a </s></s> b </s>`, no segment ids) and are truncated to
`max_seq_length` tokens including the special tokens (pairs: round-robin, the longer text loses tokens
first), as keras_hub's `BertTextClassifierPreprocessor` does during training.
"""

from __future__ import annotations

import logging

from ltp_tf.checkpoints import Checkpoint
from ltp_tf.data.tokenization import preprocessor_from_files
from ltp_tf.families import get_family

# Tokenizer settings read from `checkpoint.json`, with the defaults of the packaged (uncased) MiniLM
# as keras_hub loads it (`BertTokenizer.from_preset`: lowercase, accents kept).
TOKENIZER_DEFAULTS = {"lowercase": True, "strip_accents": False}


def tokenizer_settings(checkpoint: Checkpoint) -> dict[str, bool]:
    """`lowercase` and `strip_accents` from the checkpoint's metadata (defaults logged when absent).

    Empty for families whose tokenizer has no such settings (BPE, SentencePiece).
    """
    settings = {}
    if get_family(checkpoint.family).tokenizer_files != ("vocab.txt",):
        return settings
    for key, default in TOKENIZER_DEFAULTS.items():
        value = checkpoint.metadata.get(key)
        if value is None:
            # A missing `lowercase` may be a real mismatch; `strip_accents` is keras_hub's BERT default.
            log = logging.warning if key == "lowercase" else logging.info
            log("checkpoint.json of %s has no %r; using %r (the packaged MiniLM's setting).", checkpoint.path, key,
                default)
            value = default
        if not isinstance(value, bool):
            raise ValueError(f"`{key}` in checkpoint.json must be true or false. Received: {key}={value!r}")
        settings[key] = value
    return settings


def checkpoint_preprocessor(checkpoint: Checkpoint):
    """The family's keras_hub text-classifier preprocessor with the checkpoint's tokenizer and `max_seq_length`."""
    return preprocessor_from_files(checkpoint.path, checkpoint.family, checkpoint.max_seq_length,
                                   **tokenizer_settings(checkpoint))
