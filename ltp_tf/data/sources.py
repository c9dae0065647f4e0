"""Where GLUE examples come from: the standard TSV folders (default) or tensorflow-datasets."""

from __future__ import annotations

from ltp_tf.data.glue import GlueExamples, GlueTask, read_split

DATA_SOURCES = ("tsv", "tfds")


def read_examples(task: GlueTask | str, split: str, data_dir: str | None = None, source: str = "tsv") -> GlueExamples:
    """A split from `source`: `"tsv"` reads `<data_dir>/<TASK>/<split>.tsv`; `"tfds"` reads `glue/<task>` with
    `data_dir` as the TFDS data folder."""
    if source == "tsv":
        return read_split(task, split, data_dir)
    if source == "tfds":
        from ltp_tf.data.tfds_source import read_tfds_split

        return read_tfds_split(task, split, data_dir)
    raise ValueError(f"`data_source` must be one of {list(DATA_SOURCES)}. Received: data_source={source!r}")
