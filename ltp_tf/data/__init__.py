"""GLUE data: task specs, TSV readers, tokenization into NumPy features, features folders (`features`), metrics (`glue_metrics`)."""

from ltp_tf.data.glue import TASKS, GlueExamples, GlueTask, default_glue_dir, get_task, read_split
from ltp_tf.data.tokenization import (TokenizedFeatures, concatenated_windows, load_preprocessor, tokenize,
                                      trim_to_longest)

__all__ = ["TASKS", "GlueExamples", "GlueTask", "TokenizedFeatures", "concatenated_windows", "default_glue_dir",
           "get_task", "load_preprocessor", "read_split", "tokenize", "trim_to_longest"]
