"""Train with learned token pruning on GLUE: `python -m ltp_tf.train --flagfile=glue_sst2.flags`.

Runs the LTP recipe (`--stages=finetune,soft,hard`) or its baselines (`topk`, `threshold`) with the
flags of the original LTP `run.py` (`--task --restore --lr --bs --epoch --save_step --masking_mode
--temperature --lambda --weight_decay --no_load`, and the config keys `--prune_mode
--final_token_threshold --token_keep_rate --scoring_mode`). The flags are parsed once into a
`TrainConfig` and checked before any work starts. See docs/training.md.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from ltp_tf.training.config import DEFAULT_OUTPUT_DIR, STAGES, TrainConfig, parse_stages, stages_from_masking_mode

_TASK = flags.DEFINE_string("task", None, "GLUE task: sst2, mrpc, rte, stsb, cola, qnli, qqp or mnli (any case).")
_STAGES = flags.DEFINE_string("stages", "finetune,soft,hard",
                              f"Comma-separated stages, run in the order {','.join(STAGES)}.")
_MASKING_MODE = flags.DEFINE_string("masking_mode", None, "LTP-style stage choice instead of --stages: soft (threshold "
                                    "search) or hard (hard stage on a soft --restore; else the topk/threshold baseline).")
_PRUNE_MODE = flags.DEFINE_string("prune_mode", None, "With --masking_mode: topk or absolute_threshold. With --stages it "
                                  "must agree with the pruning stages.")
_MODEL = flags.DEFINE_string("model", None, "Pretrained encoder: a local Hugging Face folder (BERT, RoBERTa, XLM-RoBERTa, "
                             "DistilBERT, ALBERT) or keras_hub preset. "
                             "Default: the packaged MiniLM-L6.")
_RESTORE = flags.DEFINE_string("restore", None, "Checkpoint folder (written by ltp_tf.train) the first stage starts from.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", DEFAULT_OUTPUT_DIR, "Where checkpoints and reports go.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "GLUE folder (<dir>/<TASK>/{train,dev}.tsv). Default: "
                                "$LTP_TF_GLUE_DIR or ../shared/data/glue.")
_DATA_SOURCE = flags.DEFINE_string("data_source", "tsv", "tsv (the glue_data TSV folders under --data_dir) or tfds "
                                   "(tensorflow-datasets glue/<task>, --data_dir as its data folder).")
_FEATURES_DIR = flags.DEFINE_string("features_dir", None, "Tokenized features folder (NumPy): read if present, "
                                    "written first if not. Training from it needs no TensorFlow.")
_MAX_SEQ_LENGTH = flags.DEFINE_integer("max_seq_length", 128, "Tokens per example after truncation.")
_MAX_TRAIN = flags.DEFINE_integer("max_train_examples", None, "Train on a fixed random subset of this many examples.")
_MAX_EVAL = flags.DEFINE_integer("max_eval_examples", None, "Evaluate on the first N examples of each dev split.")
_SEED = flags.DEFINE_integer("seed", 42, "Random seed (weights of new layers, dropout, batch order, subset).")
_LR = flags.DEFINE_float("lr", 2e-5, "Learning rate of every stage without its own --<stage>_lr.")
_EPOCH = flags.DEFINE_integer("epoch", 3, "Epochs of every stage without its own --<stage>_epoch.")
_BS = flags.DEFINE_integer("bs", 32, "Training batch size.")
_EVAL_BS = flags.DEFINE_integer("eval_bs", None, "Evaluation batch size (default: --bs).")
_FINETUNE_LR = flags.DEFINE_float("finetune_lr", None, "Learning rate of the finetune stage.")
_FINETUNE_EPOCH = flags.DEFINE_integer("finetune_epoch", None, "Epochs of the finetune stage.")
_SOFT_LR = flags.DEFINE_float("soft_lr", None, "Learning rate of the soft stage.")
_SOFT_EPOCH = flags.DEFINE_integer("soft_epoch", None, "Epochs of the soft stage.")
_HARD_LR = flags.DEFINE_float("hard_lr", None, "Learning rate of the hard stage and the topk/threshold baselines.")
_HARD_EPOCH = flags.DEFINE_integer("hard_epoch", None, "Epochs of the hard stage and the topk/threshold baselines.")
_THRESHOLD_LR = flags.DEFINE_float("threshold_lr", None, "Learning rate of the thresholds in the soft stage "
                                   "(default: the stage's learning rate, as LTP).")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 0.0, "AdamW weight decay (never on biases, LayerNorms, thresholds).")
_WARMUP_RATIO = flags.DEFINE_float("warmup_ratio", 0.0, "Fraction of steps with linear learning-rate warm-up.")
_MAX_GRAD_NORM = flags.DEFINE_float("max_grad_norm", 1.0, "Global gradient-norm clipping (0: off).")
_SAVE_STEP = flags.DEFINE_integer("save_step", None, "Evaluate (and keep the best) every N steps instead of each epoch.")
_NO_LOAD = flags.DEFINE_boolean("no_load", False, "Keep the last weights of a stage instead of the best on dev.")
_FINAL_TOKEN_THRESHOLD = flags.DEFINE_float("final_token_threshold", 0.01, "Last layer's initial threshold; layer i "
                                            "of L starts at final_token_threshold * i / L.")
_TOKEN_KEEP_RATE = flags.DEFINE_float("token_keep_rate", 0.5, "Top-k baseline: keep rate of the last layer.")
_SCORING_MODE = flags.DEFINE_string("scoring_mode", "mean", "Token importance: mean or length_normalized.")
_TEMPERATURE = flags.DEFINE_float("temperature", 1e-3, "Soft-mask temperature T.")
_LAMBDA = flags.DEFINE_float("lambda", 0.1, "Weight of the mask loss lambda * sum_layers mean(mask).")
_SOFT_MASK = flags.DEFINE_string("soft_mask", "sigmoid", "Soft-stage mask: sigmoid (LTP) or straight_through (hard "
                                 "forward pass as evaluated, sigmoid gradient).")
_TARGET_FLOPS = flags.DEFINE_float("target_flops_reduction", None, "Soft stage: reach this dense/pruned FLOPs ratio "
                                   "(e.g. 2) with a Lagrange multiplier instead of a fixed --lambda.")
_KD_WEIGHT = flags.DEFINE_float("kd_weight", 0.0, "> 0: distil the dense teacher's logits (T^2 KL; MSE for regression) "
                                "in the soft/hard/topk/threshold stages with this weight.")
_KD_TEMPERATURE = flags.DEFINE_float("kd_temperature", 1.0, "Softmax temperature of --kd_weight.")
_KD_HIDDEN_WEIGHT = flags.DEFINE_float("kd_hidden_weight", 0.0, "> 0: also an MSE on the last-layer [CLS] state.")
_TEACHER = flags.DEFINE_string("teacher", None, "Dense checkpoint to distil from. Default: this run's finetune stage, "
                               "else --restore when it is dense.")
_JIT_COMPILE = flags.DEFINE_boolean("jit_compile", None, "Compile training and evaluation steps with XLA. Unset: on "
                                    "GPU/TPU and on JAX, off for TensorFlow on CPU (where XLA measured slower).")
_MIXED_PRECISION = flags.DEFINE_string("mixed_precision", "auto", "auto (mixed_bfloat16 on GPU/TPU, float32 on CPU), "
                                       "float32, mixed_float16 or mixed_bfloat16.")
_PAD_TO = flags.DEFINE_integer("pad_to_multiple_of", 8, "Batch widths are rounded up to a multiple of this.")
_VERBOSE = flags.DEFINE_integer("verbose", 1, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per period.")


# Training past one device (ltp_tf.distribution).
_DISTRIBUTION = flags.DEFINE_string("distribution_strategy", "none", "none, mirrored, multi_worker_mirrored (TF_CONFIG), "
                                    "tpu (TensorFlow backend) or data_parallel (JAX backend). --bs is the global batch.")
_TPU_ADDRESS = flags.DEFINE_string("tpu_address", None, "With --distribution_strategy=tpu: the TPU name or grpc address.")
_LR_SCHEDULER = flags.DEFINE_string("lr_scheduler_type", "linear", "linear (decay to 0 after warm-up) or constant.")
# Weight pruning and distillation (ltp_tf.sparsity), the flags of Intel Neural Compressor's GLUE example.
_DO_PRUNE = flags.DEFINE_boolean("do_prune", False, "Prune weights in structured patterns during the stages.")
_TARGET_SPARSITY = flags.DEFINE_float("target_sparsity", 0.9, "Final weight sparsity.")
_PRUNING_PATTERN = flags.DEFINE_string("pruning_pattern", "4x1", "NxM (e.g. 4x1), N:M (e.g. 2:4), 1xchannel or channelx1.")
_PRUNING_FREQUENCY = flags.DEFINE_integer("pruning_frequency", 50, "Optimizer steps between mask updates.")
_SPARSITY_WARM_EPOCHS = flags.DEFINE_float("sparsity_warm_epochs", 1.0, "Epochs before the first mask update.")
_COOLDOWN_EPOCHS = flags.DEFINE_float("cooldown_epochs", 0.0, "Epochs after the last mask update.")
_PRUNING_TYPE = flags.DEFINE_string("pruning_type", "snip_momentum", "magnitude, snip or snip_momentum.")
_PRUNING_SCOPE = flags.DEFINE_string("pruning_scope", "global", "global (one ranking) or local (per layer).")
_SPARSITY_DECAY = flags.DEFINE_string("sparsity_decay_type", "exp", "exp, cos, linear or cube.")
_MAX_SPARSITY_OP = flags.DEFINE_float("max_sparsity_ratio_per_op", 0.98, "Largest sparsity of one layer.")
_MIN_SPARSITY_OP = flags.DEFINE_float("min_sparsity_ratio_per_op", 0.0, "Smallest sparsity of one layer.")
_PRUNING_CONFIG_FILE = flags.DEFINE_string("pruning_config_file", None, "JSON or YAML file of mixed per-layer configs.")
_DISTILL_WEIGHT = flags.DEFINE_float("distill_loss_weight", 0.0, "> 0: distil from the dense teacher with this weight.")
_DISTILL_MODE = flags.DEFINE_string("distill_mode", "hidden_mse", "hidden_mse (replaces the task loss, as the "
                                    "reference) or logits_kl (added to it).")
_DISTILL_TEMPERATURE = flags.DEFINE_float("distill_temperature", 1.0, "Softmax temperature of logits_kl.")


def weight_pruning_from_flags() -> dict | None:
    """The weight-pruning settings of the parsed flags, or None when neither pruning nor distillation is on."""
    if not _DO_PRUNE.value and not _DISTILL_WEIGHT.value:
        return None
    return {"do_prune": _DO_PRUNE.value, "target_sparsity": _TARGET_SPARSITY.value,
            "pruning_pattern": _PRUNING_PATTERN.value, "pruning_frequency": _PRUNING_FREQUENCY.value,
            "sparsity_warm_epochs": _SPARSITY_WARM_EPOCHS.value, "cooldown_epochs": _COOLDOWN_EPOCHS.value,
            "pruning_type": _PRUNING_TYPE.value, "pruning_scope": _PRUNING_SCOPE.value,
            "sparsity_decay_type": _SPARSITY_DECAY.value, "max_sparsity_ratio_per_op": _MAX_SPARSITY_OP.value,
            "min_sparsity_ratio_per_op": _MIN_SPARSITY_OP.value, "pruning_config_file": _PRUNING_CONFIG_FILE.value,
            "distill_loss_weight": _DISTILL_WEIGHT.value, "distill_mode": _DISTILL_MODE.value,
            "distill_temperature": _DISTILL_TEMPERATURE.value}


def config_from_flags() -> TrainConfig:
    """The validated `TrainConfig` of the parsed flags (the only place that reads `FLAGS`)."""
    if _TASK.value is None:
        raise ValueError("`--task` is required. Received: --task unset")
    stages = parse_stages(_STAGES.value)
    if _MASKING_MODE.value is not None:
        if flags.FLAGS["stages"].present:
            raise ValueError("Set one of `--stages` and `--masking_mode` (the original LTP way of choosing a stage). "
                             f"Received: --stages={_STAGES.value} --masking_mode={_MASKING_MODE.value}")
        stages = stages_from_masking_mode(_MASKING_MODE.value, _PRUNE_MODE.value, _restore_stage(_RESTORE.value))
    elif _PRUNE_MODE.value is not None:
        _check_prune_mode(_PRUNE_MODE.value, stages)
    return TrainConfig(
        task=_TASK.value, stages=stages, model=_MODEL.value, restore=_RESTORE.value, output_dir=_OUTPUT_DIR.value,
        data_dir=_DATA_DIR.value, data_source=_DATA_SOURCE.value, features_dir=_FEATURES_DIR.value, max_seq_length=_MAX_SEQ_LENGTH.value,
        max_train_examples=_MAX_TRAIN.value, max_eval_examples=_MAX_EVAL.value, seed=_SEED.value, lr=_LR.value,
        epoch=_EPOCH.value, bs=_BS.value, eval_bs=_EVAL_BS.value, finetune_lr=_FINETUNE_LR.value,
        finetune_epoch=_FINETUNE_EPOCH.value, soft_lr=_SOFT_LR.value, soft_epoch=_SOFT_EPOCH.value,
        hard_lr=_HARD_LR.value, hard_epoch=_HARD_EPOCH.value, threshold_lr=_THRESHOLD_LR.value,
        weight_decay=_WEIGHT_DECAY.value, warmup_ratio=_WARMUP_RATIO.value, max_grad_norm=_MAX_GRAD_NORM.value,
        save_step=_SAVE_STEP.value, no_load=_NO_LOAD.value, final_token_threshold=_FINAL_TOKEN_THRESHOLD.value,
        token_keep_rate=_TOKEN_KEEP_RATE.value, scoring_mode=_SCORING_MODE.value, temperature=_TEMPERATURE.value,
        mask_loss_weight=_LAMBDA.value, soft_mask=_SOFT_MASK.value, target_flops_reduction=_TARGET_FLOPS.value,
        kd_weight=_KD_WEIGHT.value, kd_temperature=_KD_TEMPERATURE.value, kd_hidden_weight=_KD_HIDDEN_WEIGHT.value,
        teacher=_TEACHER.value, jit_compile=_JIT_COMPILE.value, mixed_precision=_MIXED_PRECISION.value,
        pad_to_multiple_of=_PAD_TO.value, verbose=_VERBOSE.value, distribution_strategy=_DISTRIBUTION.value,
        tpu_address=_TPU_ADDRESS.value, lr_scheduler_type=_LR_SCHEDULER.value,
        weight_pruning=weight_pruning_from_flags())


def _restore_stage(restore: str | None) -> str | None:
    from ltp_tf.checkpoints import METADATA_FILE, read_checkpoint_info

    if restore is None or not os.path.isfile(os.path.join(restore, METADATA_FILE)):
        return None  # not a checkpoint: the config's checks say so
    return read_checkpoint_info(restore).stage


def _check_prune_mode(prune_mode: str, stages: tuple[str, ...]) -> None:
    modes = {"soft": "absolute_threshold", "hard": "absolute_threshold", "threshold": "absolute_threshold",
             "topk": "topk"}
    clashing = [s for s in stages if s in modes and modes[s] != prune_mode]
    if prune_mode not in ("topk", "absolute_threshold") or clashing:
        raise ValueError(f"`--prune_mode` must be topk or absolute_threshold and match the pruning stages "
                         f"(topk: topk; soft, hard, threshold: absolute_threshold). Received: --prune_mode={prune_mode} "
                         f"--stages={','.join(stages)}")


def main(argv: list[str]) -> None:
    from ltp_tf.distribution import lost_worker_message
    from ltp_tf.locking import FolderLockedError
    from ltp_tf.training import runner

    if len(argv) > 1:
        sys.exit(f"ltp_tf.train: error: unexpected arguments {argv[1:]} (flags are --name=value)")
    try:
        config = config_from_flags()
        runner.preflight(config)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"ltp_tf.train: error: {error}")
    try:
        runner.run(config, checked=True)
    except FolderLockedError as error:
        sys.exit(f"ltp_tf.train: error: {error}")
    except Exception as error:  # a dead peer of --distribution_strategy=multi_worker_mirrored
        message = lost_worker_message(error)
        if message is None:
            raise
        sys.exit(f"ltp_tf.train: error: {message}")


if __name__ == "__main__":
    app.run(main)
