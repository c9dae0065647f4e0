"""Loading an export in Python: `load_export(path)` for a version folder written by `ltp_tf.export`.

The text signature tokenizes with TensorFlow Text ops (`RegexSplitWithOffsets`,
`FastWordpieceTokenizeWithOffsets`, `TFText>RoundRobinTrim`), which TensorFlow registers only once
`tensorflow_text` is imported: a bare `tf.saved_model.load` in a fresh process fails with
`Op type not registered 'RegexSplitWithOffsets'`. `load_export` imports it first.
"""

from __future__ import annotations

import os


def load_export(path: str):
    """`tf.saved_model.load(path)` after registering TensorFlow Text's ops; `.signatures` has both signatures."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops of the text signature)

    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"No SavedModel in {path!r}: expected {os.path.join(path, 'saved_model.pb')} "
                                "(pass a version folder such as saved_models/sst2/1)")
    return tf.saved_model.load(path)
