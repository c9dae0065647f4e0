"""Where GLUE examples come from: the standard TSV folders (default) or tensorflow-datasets."""

from __future__ import annotations

from ltp_tf.data.glue import GlueExamples, GlueTask, read_split
from ltp_tf.validation import check_one_of

DATA_SOURCES = ("tsv", "tfds")


def read_examples(task: GlueTask | str, split: str, data_dir: str | None = None, source: str = "tsv") -> GlueExamples:
    """A split from `source`: `"tsv"` reads `<data_dir>/<TASK>/<split>.tsv`; `"tfds"` reads `glue/<task>` with
    `data_dir` as the TFDS data folder."""
    check_one_of("data_source", source, DATA_SOURCES)
    if source == "tsv":
        return read_split(task, split, data_dir)
    from ltp_tf.data.tfds_source import read_tfds_split

    return read_tfds_split(task, split, data_dir)
