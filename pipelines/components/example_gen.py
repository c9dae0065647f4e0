"""ExampleGen: a GLUE task's splits (TSV folder, or tensorflow-datasets `glue/<task>`) into gzipped TFRecord
shards of `tf.train.Example` (Apache Beam)."""

from __future__ import annotations

import hashlib
import os

from ltp_tf.atomic import write_json
from pipelines.component import ExecutionContext, ExecutorResult

EXAMPLES_FILE = "examples.json"


def _line_hash(line: str) -> str:
    return hashlib.sha1(line.encode("utf-8")).hexdigest()


def _line_to_example(task_name: str, where: str, line: str) -> bytes:
    from ltp_tf.data.glue import get_task, parse_row

    texts, label = parse_row(get_task(task_name), line.split("\t"), where)
    return _encode(task_name, texts, label, _line_hash(line))


def _encode(task_name: str, texts: tuple[str, ...], label, example_id: str) -> bytes:
    """One example as a serialized `tf.train.Example`: text_0[, text_1], label, example_id."""
    import tensorflow as tf

    from ltp_tf.data.glue import get_task

    task = get_task(task_name)
    feature = {
        "example_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example_id.encode()])),
        "label": (tf.train.Feature(float_list=tf.train.FloatList(value=[label])) if task.is_regression
                  else tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))),
    }
    for i, text in enumerate(texts):
        feature[f"text_{i}"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _tfds_examples(task_name: str, split: str, data_dir: str | None) -> list[tuple[str, bytes]]:
    """(example id, serialized example) pairs of a tensorflow-datasets split, read in the driver."""
    from ltp_tf.data.tfds_source import read_tfds_split

    examples = read_tfds_split(task_name, split, data_dir)
    rows = []
    for index, label in enumerate(examples.labels.tolist()):
        texts = tuple(column[index] for column in examples.texts)
        example_id = hashlib.sha1(f"{index}\t".encode() + "\t".join(texts).encode("utf-8")).hexdigest()
        rows.append((example_id, _encode(task_name, texts, label, example_id)))
    return rows


def run_example_gen(context: ExecutionContext) -> ExecutorResult:
    """Parameters: `task`, `splits` (e.g. ["train", "dev"]), `num_shards`, optional `max_examples` (a
    deterministic slice of the train split: the examples with the smallest hashes), `source` ("tsv" or "tfds")
    and, for tfds, `tfds_data_dir`.
    Inputs (tsv): `task_dir` (the task's folder in the glue_data layout, e.g. `glue_data/SST-2`)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from ltp_tf.data.glue import get_task

    task = get_task(context.parameters["task"])
    out_dir = context.outputs["examples"]
    splits = list(context.parameters["splits"])
    max_examples = context.parameters.get("max_examples")
    source = context.parameters.get("source", "tsv")
    num_shards = int(context.parameters.get("num_shards", 2))
    with beam.Pipeline(options=PipelineOptions(list(context.beam_pipeline_args))) as pipeline:
        for split in splits:
            if source == "tfds":
                encoded = pipeline | f"Read{split}" >> beam.Create(
                    _tfds_examples(task.name, split, context.parameters.get("tfds_data_dir")))
            else:
                path = os.path.join(context.inputs["task_dir"], f"{split}.tsv")
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"ExampleGen: GLUE {task.folder} {split} split not found: expected {path}")
                encoded = (pipeline
                           | f"Read{split}" >> beam.io.ReadFromText(
                               path, skip_header_lines=1 if task.has_header else 0, strip_trailing_newlines=True)
                           | f"Key{split}" >> beam.Map(lambda line: (_line_hash(line), line.lstrip("\ufeff"))))
            if max_examples and split == "train":
                encoded = (encoded
                           | f"Slice{split}" >> beam.combiners.Top.Of(int(max_examples), key=lambda item: item[0],
                                                                           reverse=True)
                           | f"Flatten{split}" >> beam.FlatMap(lambda kept: kept))
            if source == "tfds":
                serialized = encoded | f"Encode{split}" >> beam.Map(lambda item: item[1])
            else:
                where = os.path.join(context.inputs["task_dir"], f"{split}.tsv")
                serialized = encoded | f"Encode{split}" >> beam.Map(
                    lambda item, p=where: _line_to_example(task.name, p, item[1]))
            _ = serialized | f"Write{split}" >> beam.io.WriteToTFRecord(
                os.path.join(out_dir, split, "data"), file_name_suffix=".tfrecord.gz", num_shards=num_shards)
    paths = ({split: f"tfds:glue/{task.name}/{split}" for split in splits} if source == "tfds"
             else {split: os.path.join(context.inputs["task_dir"], f"{split}.tsv") for split in splits})
    record = {"task": task.name, "splits": splits, "sources": paths}
    write_json(os.path.join(out_dir, EXAMPLES_FILE), record)
    return ExecutorResult(properties={"examples": record})
