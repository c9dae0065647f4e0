"""Where each stage writes its checkpoint: the original LTP folder layout.

    <out>/<TASK>/finetune/lr_<lr>                                                          finetune (dense)
    <out>/<TASK>/absolute_threshold/rate_<thr>/temperature_<T>/lambda_<λ>/lr_<lr>          soft
                                               (with --target_flops_reduction=R: target_<R> for lambda_<λ>)
    <soft>/hard/lr_<LR>                                                                    hard
    <ckpt>/topk/rate_<keep rate>/lr_<LR>                                                   top-k baseline
    <ckpt>/hard/rate_<thr>/lr_<LR>                                                         manual threshold

`<ckpt>` is the fine-tuned checkpoint (this run's finetune stage, or `--restore`); `<soft>` the soft one.
Numbers are written as Python prints them (`lr_2e-05`, `rate_0.01`), as LTP's folders are. While a stage
trains, its resumable state (`ltp_tf.training.resume_state`) lives in `<stage folder>.work/`; the stage folder itself appears, complete,
only when the stage has finished (see `ltp_tf.checkpoints`). The baselines' folders name their keep rate or
threshold, so several baselines restored from one checkpoint sit side by side.

Beside the checkpoints, `<out>/<TASK>/` holds `train_config.json` (the resolved config of the last
command), `report.json` (its final report) and, when tokenizing in-process, `vocab.txt`. Distillation's
cached teacher outputs (`ltp_tf.training.teacher_cache`) go to `<features_dir>/teacher_outputs/`, or to
`<out>/<TASK>/teacher_outputs/` without `--features_dir`.
"""

from __future__ import annotations

import os

from ltp_tf.training.train_config import STAGE_SOURCES, TrainConfig

WORK_SUFFIX = ".work"


def task_dir(config: TrainConfig) -> str:
    return os.path.join(config.output_dir, config.task_spec.folder.replace("-", "").upper())


def stage_dir(config: TrainConfig, stage: str) -> str:
    """The checkpoint folder of `stage` in this run."""
    lr = config.stage_settings(stage).lr
    if stage == "finetune":
        return os.path.join(task_dir(config), "finetune", f"lr_{lr}")
    if stage == "soft":
        # A FLOPs target replaces lambda, and names the folder in its place.
        objective = (f"target_{config.target_flops_reduction}" if config.target_flops_reduction is not None
                     else f"lambda_{config.mask_loss_weight}")
        return os.path.join(task_dir(config), "absolute_threshold", f"rate_{config.final_token_threshold}",
                            f"temperature_{config.temperature}", objective, f"lr_{lr}")
    parent = source_dir(config, stage)
    if stage == "topk":
        rates = (f"rate_{config.token_keep_rate}" if config.token_keep_rates is None
                 else "rates_" + "-".join(f"{r:g}" for r in config.token_keep_rates))
        return os.path.join(parent, "topk", rates, f"lr_{lr}")
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


def teacher_cache_dir(config: TrainConfig) -> str:
    """Where cached teacher outputs live: beside the tokenized features (or in the task folder without them)."""
    from ltp_tf.training.teacher_cache import CACHE_DIR

    return os.path.join(config.features_dir or task_dir(config), CACHE_DIR)


def teacher_dir(config: TrainConfig) -> str:
    """The dense checkpoint distillation learns from: `--teacher`, else this run's finetune stage, else a dense
    `--restore`."""
    if config.teacher is not None:
        return config.teacher
    if "finetune" in config.stages:
        return stage_dir(config, "finetune")
    if config.restore is not None:
        from ltp_tf.checkpoints import read_checkpoint_info

        if read_checkpoint_info(config.restore).prune_mode == "none":
            return config.restore
    raise ValueError("Distillation needs the dense teacher: --restore is a pruned checkpoint and no finetune stage "
                     f"runs, so pass --teacher=<dense checkpoint folder>. Received: --restore={config.restore}")
