"""Transform: tokenizes ExampleGen's examples with the checkpoint's tokenizer (Apache Beam).

Writes TFRecords of token-id features and a features folder in the training CLI's `--features_dir`
format (`ltp_tf.data.features`): `<split>.npz` (token_ids, segment_ids, padding_mask padded to
`max_seq_length`, labels, and example_ids; sorted by example id), `vocab.txt` and `features.json`. The
trainer reads it without TensorFlow text ops — what the JAX GPU machine needs.
"""

from __future__ import annotations

import glob
import json
import os
import shutil

import numpy as np

from ltp_tf.atomic import write_json
from pipelines.component import ExecutionContext, ExecutorResult


def _parse(serialized: bytes) -> dict:
    import tensorflow as tf

    example = tf.train.Example.FromString(serialized)
    features = example.features.feature
    texts = []
    for i in range(2):
        if f"text_{i}" in features:
            texts.append(features[f"text_{i}"].bytes_list.value[0].decode("utf-8"))
    label_feature = features["label"]
    label = label_feature.float_list.value[0] if label_feature.float_list.value else label_feature.int64_list.value[0]
    return {"example_id": features["example_id"].bytes_list.value[0].decode(), "texts": texts, "label": label}


class _Tokenize:
    """A Beam DoFn-like callable over batches; the tokenizer is built once per worker."""

    def __init__(self, model_dir: str, max_seq_length: int):
        self.model_dir = model_dir
        self.max_seq_length = max_seq_length
        self._preprocessor = None

    def __call__(self, batch: list[dict]):
        from ltp_tf.data.tokenization import load_preprocessor, tokenize

        if self._preprocessor is None:
            self._preprocessor = load_preprocessor(self.model_dir, self.max_seq_length)
        columns = tuple(tuple(item["texts"][i] for item in batch) for i in range(len(batch[0]["texts"])))
        features = tokenize(self._preprocessor, columns)
        for i, item in enumerate(batch):
            yield {"example_id": item["example_id"], "label": item["label"],
                   "token_ids": features.token_ids[i], "segment_ids": features.segment_ids[i],
                   "padding_mask": features.padding_mask[i]}


def _serialize(row: dict) -> bytes:
    import tensorflow as tf

    length = int(row["padding_mask"].sum())

    def ints(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))

    label = row["label"]
    feature = {
        "example_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["example_id"].encode()])),
        "token_ids": ints(row["token_ids"][:length]),
        "segment_ids": ints(row["segment_ids"][:length]),
        "label": (tf.train.Feature(float_list=tf.train.FloatList(value=[label])) if isinstance(label, float)
                  else ints([label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def read_feature_records(pattern: str) -> list[dict]:
    """Reads Transform's TFRecords back into rows (used to materialise the NumPy files)."""
    import tensorflow as tf

    rows = []
    for path in sorted(glob.glob(pattern)):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP").as_numpy_iterator():
            features = tf.train.Example.FromString(record).features.feature
            label = features["label"]
            rows.append({
                "example_id": features["example_id"].bytes_list.value[0].decode(),
                "token_ids": list(features["token_ids"].int64_list.value),
                "segment_ids": list(features["segment_ids"].int64_list.value),
                "label": label.float_list.value[0] if label.float_list.value else label.int64_list.value[0],
            })
    return rows


def materialize_npz(rows: list[dict], max_seq_length: int, path: str) -> int:
    """Writes rows as padded NumPy arrays sorted by example id; returns the number of rows."""
    rows = sorted(rows, key=lambda r: (r["example_id"], r["token_ids"]))
    token_ids = np.zeros((len(rows), max_seq_length), np.int32)
    segment_ids = np.zeros_like(token_ids)
    for i, row in enumerate(rows):
        token_ids[i, :len(row["token_ids"])] = row["token_ids"]
        segment_ids[i, :len(row["segment_ids"])] = row["segment_ids"]
    lengths = np.array([len(r["token_ids"]) for r in rows])
    padding_mask = np.arange(max_seq_length)[None, :] < lengths[:, None]
    labels = np.array([r["label"] for r in rows],
                      dtype=np.float32 if rows and isinstance(rows[0]["label"], float) else np.int32)
    np.savez_compressed(path, token_ids=token_ids, segment_ids=segment_ids, padding_mask=padding_mask, labels=labels,
                        example_ids=np.array([r["example_id"] for r in rows]))
    return len(rows)


def run_transform(context: ExecutionContext) -> ExecutorResult:
    """Parameters: `model_dir` (tokenizer folder with vocab.txt), `max_seq_length`, `lowercase`.
    Inputs: `examples` (ExampleGen output)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    examples_dir = context.inputs["examples"]
    with open(os.path.join(examples_dir, "examples.json"), encoding="utf-8") as f:
        examples = json.load(f)
    out_dir = context.outputs["features"]
    max_seq_length = int(context.parameters["max_seq_length"])
    tokenize_batch = _Tokenize(context.parameters["model_dir"], max_seq_length)
    with beam.Pipeline(options=PipelineOptions(list(context.beam_pipeline_args))) as pipeline:
        for split in examples["splits"]:
            _ = (pipeline
                 | f"Read{split}" >> beam.io.ReadFromTFRecord(os.path.join(examples_dir, split, "data-*"),
                                                               compression_type=beam.io.filesystem.CompressionTypes.GZIP)
                 | f"Parse{split}" >> beam.Map(_parse)
                 | f"Batch{split}" >> beam.BatchElements(min_batch_size=32, max_batch_size=512)
                 | f"Tokenize{split}" >> beam.FlatMap(tokenize_batch)
                 | f"Serialize{split}" >> beam.Map(_serialize)
                 | f"Write{split}" >> beam.io.WriteToTFRecord(os.path.join(out_dir, split, "data"),
                                                              file_name_suffix=".tfrecord.gz"))
    counts = {}
    for split in examples["splits"]:
        rows = read_feature_records(os.path.join(out_dir, split, "data-*"))
        counts[split] = materialize_npz(rows, max_seq_length, os.path.join(out_dir, f"{split}.npz"))
    model_dir = context.parameters["model_dir"]
    shutil.copyfile(os.path.join(model_dir, "vocab.txt"), os.path.join(out_dir, "vocab.txt"))
    record = {"task": examples["task"], "max_seq_length": max_seq_length, "splits": counts,
              "lowercase": bool(context.parameters.get("lowercase", True)),
              "source": {"examples": examples_dir, "model": model_dir, "engine": "apache_beam"}}
    write_json(os.path.join(out_dir, "features.json"), record)
    return ExecutorResult(properties={"features": record})
