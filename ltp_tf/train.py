"""Train with learned token pruning on GLUE: `python -m ltp_tf.train --flagfile=glue_sst2.flags`.

Runs the LTP recipe (`--stages=finetune,soft,hard`) or its baselines (`topk`, `threshold`) with the
flags of the original LTP `run.py` (`--task --restore --lr --bs --epoch --save_step --masking_mode
--temperature --lambda --weight_decay --no_load`, and the config keys `--prune_mode
--final_token_threshold --token_keep_rate --scoring_mode`). The flags (`ltp_tf.training.flags`) are parsed
once into a `TrainConfig` and checked before any work starts. A `--flagfile` that is not a file where the
command runs is looked up by name in `configs/flags/`, where the shipped flagfiles live. See docs/training.md.
"""

from __future__ import annotations

import sys

from absl import app, flags

from ltp_tf.training import flags as training_flags

training_flags.define_flags()
flags.adopt_module_key_flags(training_flags)  # `--help` lists them as this command's flags


def main(argv: list[str]) -> None:
    from ltp_tf.distribution import lost_worker_message
    from ltp_tf.locking import FolderLockedError
    from ltp_tf.training import training_run

    if len(argv) > 1:
        sys.exit(f"ltp_tf.train: error: unexpected arguments {argv[1:]} (flags are --name=value)")
    try:
        config = training_flags.config_from_flags(flags.FLAGS)
        training_run.preflight(config)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"ltp_tf.train: error: {error}")
    try:
        training_run.run(config, checked=True)
    except FolderLockedError as error:
        sys.exit(f"ltp_tf.train: error: {error}")
    except Exception as error:  # a dead peer of --distribution_strategy=multi_worker_mirrored
        message = lost_worker_message(error)
        if message is None:
            raise
        sys.exit(f"ltp_tf.train: error: {message}")


if __name__ == "__main__":
    app.run(main, flags_parser=training_flags.parse_flags)
