"""A tiny RoBERTa folder (BPE tokenizer, no segment ids, `<s>` pooling) through the whole path.

The training CLI fine-tunes it on real SST-2 sentences (one stage, one step); the checkpoint keeps its BPE
files; its tokenizer and the SavedModel's in-graph tokenizer give keras_hub's `RobertaTokenizer` ids (read by
keras_hub's own converter from the Hugging Face files); a pruning copy's exported text signature, token-id
signature and token-dropping runner agree with the Keras model. ONNX export is not repeated here (it costs
about 30 s and nothing in it is family-specific; test_export_saved_model.py checks its parity).
"""

import json
import os
import subprocess
import sys

import keras_hub
import numpy as np
import tensorflow as tf

from ltp_tf import TokenPruningBackbone, TokenPruningClassifier, TokenPruningConfig
from ltp_tf.checkpoints import is_complete, load_checkpoint, save_checkpoint
from ltp_tf.data import get_task, read_split, tokenize
from ltp_tf.inference import TokenDroppingRunner
from ltp_tf.serving.exporter import export_checkpoint
from ltp_tf.serving.text import checkpoint_preprocessor
from tests.hf_models import write_hf_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_SEQ_LENGTH = 32


def test_tiny_roberta_trains_exports_and_tokenizes_like_keras_hub(tmp_path, glue_dir):
    model_dir = write_hf_model(str(tmp_path / "roberta"), "roberta")
    out = str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, "-m", "ltp_tf.train", f"--model={model_dir}", "--task=sst2", f"--data_dir={glue_dir}",
         "--max_train_examples=16", "--max_eval_examples=8", f"--max_seq_length={MAX_SEQ_LENGTH}", "--bs=16",
         "--finetune_epoch=1", "--stages=finetune", f"--output_dir={out}", "--verbose=2"],
        cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    finetuned = os.path.join(out, "SST2", "finetune", "lr_2e-05")
    assert is_complete(finetuned)
    assert {"vocab.json", "merges.txt"} <= set(os.listdir(finetuned)) and "vocab.txt" not in os.listdir(finetuned)
    checkpoint = load_checkpoint(finetuned)
    assert checkpoint.family == "roberta" and checkpoint.model.backbone.family == "roberta"
    assert [os.path.basename(f) for f in checkpoint.tokenizer_files] == ["vocab.json", "merges.txt"]

    # The checkpoint's tokenizer = keras_hub's RoBERTa preprocessor built from the Hugging Face folder.
    sentences = list(read_split(get_task("sst2"), "dev", glue_dir).texts[0][:24])
    hub_preprocessor = keras_hub.models.RobertaTextClassifierPreprocessor(
        keras_hub.models.RobertaTokenizer.from_preset(model_dir), sequence_length=MAX_SEQ_LENGTH)
    expected = tokenize(hub_preprocessor, (sentences,))
    ours = tokenize(checkpoint_preprocessor(checkpoint), (sentences,))
    np.testing.assert_array_equal(ours.token_ids, expected.token_ids)
    np.testing.assert_array_equal(ours.padding_mask, expected.padding_mask)
    assert (ours.token_ids[:, 0] == 0).all() and (ours.segment_ids == 0).all()  # `<s>` first, no segments

    # A pruning copy of the fine-tuned model (hard thresholds), exported with the text signature.
    config = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="hard", final_token_threshold=0.1)
    model = TokenPruningClassifier(TokenPruningBackbone.from_config({**checkpoint.model.backbone.get_config(),
                                                                     "pruning_config": config.to_dict()}), 2)
    model({"token_ids": np.zeros((1, 4), "int32")})
    model.set_weights(checkpoint.model.get_weights())
    for block in model.backbone.token_pruning_blocks:
        block.frozen_threshold.assign(block.base_threshold)
    pruned = save_checkpoint(str(tmp_path / "pruned"), model, task="sst2", max_seq_length=MAX_SEQ_LENGTH,
                             vocabulary_file=checkpoint.tokenizer_files)
    export = export_checkpoint(pruned, "roberta", str(tmp_path / "exports"))
    with open(os.path.join(export.path, "assets.extra", "ltp_tf_export.json")) as f:
        assert json.load(f)["family"] == "roberta"
    loaded = tf.saved_model.load(export.path)
    by_text = loaded.signatures["serving_default"](sentence=tf.constant(sentences))
    features = expected.as_dict()
    by_ids = loaded.signatures["token_ids"](**{k: tf.constant(v.astype(np.int32)) for k, v in features.items()})
    keras_logits = np.asarray(model(features))
    np.testing.assert_allclose(by_text["logits"].numpy(), by_ids["logits"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(by_text["kept_tokens"].numpy(), by_ids["kept_tokens"].numpy())
    np.testing.assert_allclose(by_ids["logits"].numpy(), keras_logits, atol=1e-4)
    kept_last = by_ids["kept_tokens"].numpy()[:, -1]
    assert (kept_last < ours.lengths).any() and (kept_last >= 1).all()  # pruned, `<s>` kept

    runner = TokenDroppingRunner(model, jit_compile=False)  # XLA is covered by the runner tests
    result = runner(features)
    np.testing.assert_allclose(result["logits"], keras_logits, atol=1e-4)
    np.testing.assert_array_equal(result["kept_tokens"], by_ids["kept_tokens"].numpy())
