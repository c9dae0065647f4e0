"""Beam ExampleGen + Transform on real MRPC give the same features as the in-process path."""

import os

import numpy as np

from ltp_tf.data import load_preprocessor, read_split, tokenize
from ltp_tf.models.pretrained import packaged_minilm_path
from pipelines.component import Component, OutputSpec, Pipeline
from pipelines.components.example_gen import run_example_gen
from pipelines.components.transform import run_transform
from pipelines.local_runner import LocalRunner


def _rows(token_ids, segment_ids, mask, labels):
    return sorted((tuple(t[m]), tuple(s[m]), int(l)) for t, s, m, l in zip(token_ids, segment_ids, mask, labels))


def test_beam_features_equal_in_process_features(tmp_path, glue_dir):
    pipeline = Pipeline("beam", (
        Component("ExampleGen", run_example_gen, {"task": "mrpc", "splits": ["dev"], "num_shards": 3},
                  external_inputs={"task_dir": os.path.join(glue_dir, "MRPC")},
                  outputs={"examples": OutputSpec("Examples")}),
        Component("Transform", run_transform, {"model_dir": packaged_minilm_path(), "max_seq_length": 48},
                  inputs={"examples": ("ExampleGen", "examples")}, outputs={"features": OutputSpec("Features")}),
    ))
    results = LocalRunner(str(tmp_path)).run(pipeline, log=lambda _: None)
    beam = np.load(os.path.join(results[1].outputs["features"], "dev.npz"))
    examples = read_split("mrpc", "dev", glue_dir)
    local = tokenize(load_preprocessor(packaged_minilm_path(), 48), examples.texts)
    assert len(beam["labels"]) == len(examples) == 408
    assert _rows(beam["token_ids"], beam["segment_ids"], beam["padding_mask"], beam["labels"]) == \
        _rows(local.token_ids, local.segment_ids, local.padding_mask, examples.labels)
