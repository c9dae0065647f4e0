"""ExampleGen: a GLUE task's TSV splits into gzipped TFRecord shards of `tf.train.Example` (Apache Beam)."""

from __future__ import annotations

import hashlib
import json
import os

from pipelines.component import ExecutionContext, ExecutorResult

EXAMPLES_FILE = "examples.json"


def _line_hash(line: str) -> str:
    return hashlib.sha1(line.encode("utf-8")).hexdigest()


def _to_example(task_name: str, where: str, line: str) -> bytes:
    import tensorflow as tf

    from ltp_tf.data.glue import get_task, parse_row

    task = get_task(task_name)
    texts, label = parse_row(task, line.split("\t"), where)
    feature = {
        "example_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[_line_hash(line).encode()])),
        "label": (tf.train.Feature(float_list=tf.train.FloatList(value=[label])) if task.is_regression
                  else tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))),
    }
    for i, text in enumerate(texts):
        feature[f"text_{i}"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def run_example_gen(context: ExecutionContext) -> ExecutorResult:
    """Parameters: `task`, `splits` (e.g. ["train", "dev"]), `num_shards`, optional `max_examples` (a
    deterministic slice of the train split: the lines with the smallest hashes).
    Inputs: `task_dir` (the task's folder in the glue_data layout, e.g. `glue_data/SST-2`)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from ltp_tf.data.glue import get_task

    task = get_task(context.parameters["task"])
    out_dir = context.outputs["examples"]
    splits = list(context.parameters["splits"])
    max_examples = context.parameters.get("max_examples")
    paths = {split: os.path.join(context.inputs["task_dir"], f"{split}.tsv") for split in splits}
    for split, path in paths.items():
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ExampleGen: GLUE {task.folder} {split} split not found: expected {path}")
    with beam.Pipeline(options=PipelineOptions(list(context.beam_pipeline_args))) as pipeline:
        for split, path in paths.items():
            lines = pipeline | f"Read{split}" >> beam.io.ReadFromText(
                path, skip_header_lines=1 if task.has_header else 0, strip_trailing_newlines=True)
            if max_examples and split == "train":
                lines = (lines
                         | f"Slice{split}" >> beam.combiners.Top.Of(int(max_examples), key=_line_hash, reverse=True)
                         | f"Flatten{split}" >> beam.FlatMap(lambda kept: kept))
            _ = (lines
                 | f"Encode{split}" >> beam.Map(lambda line, p=path: _to_example(task.name, p, line.lstrip("\ufeff")))
                 | f"Write{split}" >> beam.io.WriteToTFRecord(
                     os.path.join(out_dir, split, "data"), file_name_suffix=".tfrecord.gz",
                     num_shards=int(context.parameters.get("num_shards", 2))))
    record = {"task": task.name, "splits": splits, "sources": paths}
    with open(os.path.join(out_dir, EXAMPLES_FILE), "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
    return ExecutorResult(properties={"examples": record})
