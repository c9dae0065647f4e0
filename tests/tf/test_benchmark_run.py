"""`ltp_tf.benchmarking.dense_vs_pruned.run` end to end on a tiny checkpoint and real SST-2 dev text: it writes its
table and information, and scores every engine's dense and pruned model on the dev labels — the Keras engine's
scores equal the task metric of the Keras model's own logits, and so do fp32 ONNX Runtime's under a token budget
that splits its batches."""

import json
import os

import numpy as np

from ltp_tf.benchmarking.dense_vs_pruned import BenchmarkConfig, run
from ltp_tf.checkpoints import load_checkpoint
from ltp_tf.data import get_task, read_split, tokenize
from ltp_tf.data.glue_metrics import compute_metrics, predictions_from_logits
from ltp_tf.models.surgery import without_token_pruning
from ltp_tf.serving.text import checkpoint_preprocessor
from ltp_tf.serving.verify import keras_reference
from tests.tf.serving_helpers import tiny_checkpoint

KEY = "dev score by engine (untimed pass over the examples timed for throughput)"


def test_run_writes_tables_and_scores_every_engine_on_dev(tmp_path, glue_dir):
    path = tiny_checkpoint(str(tmp_path / "sst2"), task="sst2")
    config = BenchmarkConfig(checkpoint=path, task="sst2", engines=("keras", "onnxruntime", "onnxruntime_int8"),
                             batch_sizes=(8,), max_examples=24, latency_examples=2, calibration_examples=0,
                             length_scan=(), threads=1, data_dir=glue_dir, output_dir=str(tmp_path / "out"),
                             tag="tiny", onnx_max_batch_tokens=24)  # batches of 8 rows up to 16 tokens: split
    paths = run(config, "test")
    assert sorted(os.listdir(tmp_path / "out")) == sorted(os.path.basename(p) for p in paths.values())
    with open(paths["json"], encoding="utf-8") as f:
        written = json.load(f)
    assert {row["engine"] for row in written["rows"]} == set(config.engines)
    scores = written["info"][KEY]
    for engine in config.engines:
        assert f"{engine}: dense " in scores
    assert "token budget 24" in written["info"]["onnxruntime"]

    checkpoint = load_checkpoint(path)
    task = get_task("sst2")
    examples = read_split(task, "dev", glue_dir).take(24)
    features = tokenize(checkpoint_preprocessor(checkpoint), examples.texts).as_dict()
    for name, model in (("dense", without_token_pruning(checkpoint.model)), ("pruned", checkpoint.model)):
        logits = np.concatenate([keras_reference(model, {k: v[i:i + 1] for k, v in features.items()})["logits"]
                                 for i in range(24)])
        accuracy = compute_metrics(task, examples.labels, predictions_from_logits(task, logits))["accuracy"]
        for engine_scores in scores.split(";")[:2]:  # keras, onnxruntime (fp32, budget-split batches)
            assert f"{name} {100 * accuracy:.2f}" in engine_scores
