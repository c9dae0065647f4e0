"""GLUE training for learned token pruning: config, batching, the trainer (FLOPs target, cached-teacher distillation),
stages and reports.

The command line is `python -m ltp_tf.train` (its flags: `ltp_tf.training.flags`); `run(TrainConfig(...))` is the
same from Python.
"""

from ltp_tf.training.plugins import StageContext, StagePlugins
from ltp_tf.training.train_config import TrainConfig
from ltp_tf.training.training_run import run

__all__ = ["StageContext", "StagePlugins", "TrainConfig", "run"]
