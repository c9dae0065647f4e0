"""Where each stage writes its checkpoint: the original LTP folder layout.

    <out>/<TASK>/finetune/lr_<lr>                                                          finetune (dense)
    <out>/<TASK>/absolute_threshold/rate_<thr>/temperature_<T>/lambda_<λ>/lr_<lr>          soft
    <soft>/hard/lr_<LR>                                                                    hard
    <ckpt>/topk/rate_<keep rate>/lr_<LR>                                                   top-k baseline
    <ckpt>/hard/rate_<thr>/lr_<LR>                                                         manual threshold

`<ckpt>` is the fine-tuned checkpoint (this run's finetune stage, or `--restore`); `<soft>` the soft one.
Numbers are written as Python prints them (`lr_2e-05`, `rate_0.01`), as LTP's folders are. While a stage
trains, its resumable state lives in `<stage folder>.work/`; the stage folder itself appears, complete,
only when the stage has finished (see `ltp_tf.checkpoints`). The baselines' folders name their keep rate or
threshold, so several baselines restored from one checkpoint sit side by side.

Beside the checkpoints, `<out>/<TASK>/` holds `train_config.json` (the resolved config of the last
command), `report.json` (its final report) and, when tokenizing in-process, `vocab.txt`.
"""

from __future__ import annotations

import os

from ltp_tf.training.config import STAGE_SOURCES, TrainConfig

WORK_SUFFIX = ".work"


def task_dir(config: TrainConfig) -> str:
    return os.path.join(config.output_dir, config.task_spec.folder.replace("-", "").upper())


def stage_dir(config: TrainConfig, stage: str) -> str:
    """The checkpoint folder of `stage` in this run."""
    lr = config.stage_settings(stage).lr
    if stage == "finetune":
        return os.path.join(task_dir(config), "finetune", f"lr_{lr}")
    if stage == "soft":
        return os.path.join(task_dir(config), "absolute_threshold", f"rate_{config.final_token_threshold}",
                            f"temperature_{config.temperature}", f"lambda_{config.mask_loss_weight}", f"lr_{lr}")
    parent = source_dir(config, stage)
    if stage == "topk":
        return os.path.join(parent, "topk", f"rate_{config.token_keep_rate}", f"lr_{lr}")
    if stage == "threshold":
        return os.path.join(parent, "hard", f"rate_{config.final_token_threshold}", f"lr_{lr}")
    return os.path.join(parent, "hard", f"lr_{lr}")


def source_dir(config: TrainConfig, stage: str) -> str | None:
    """The checkpoint `stage` starts from: an earlier stage of this run, else `--restore` (None: pretrained)."""
    source = STAGE_SOURCES[stage]
    if source is not None and source in config.stages:
        return stage_dir(config, source)
    return config.restore


def work_dir(checkpoint_dir: str) -> str:
    """The resumable training state of the stage whose checkpoint goes to `checkpoint_dir`."""
    return checkpoint_dir.rstrip(os.sep) + WORK_SUFFIX


def config_file(config: TrainConfig) -> str:
    return os.path.join(task_dir(config), "train_config.json")


def report_file(config: TrainConfig) -> str:
    return os.path.join(task_dir(config), "report.json")


def vocabulary_file(config: TrainConfig) -> str:
    return os.path.join(task_dir(config), "vocab.txt")
