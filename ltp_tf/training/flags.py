"""The training flags, defined once: `define_flags()` and `config_from_flags(FLAGS) -> TrainConfig`.

Both training CLIs (`ltp_tf.train`, `pipelines.glue_ltp`) call `define_flags()`; importing this module defines
no flags. There is one flag per `TrainConfig` field and per weight-pruning field of
`ltp_tf.sparsity.WeightPruningConfig` (`op_names` and `excluded_op_names` excepted): its name, type and
default come from the field, its help text from `HELP`. The flag is the field's name, except `--lambda`
(LTP's name for `mask_loss_weight`); `--stages` and `--token_keep_rates` are comma-separated text. Two more flags are LTP's way of
choosing a stage, `--masking_mode` and `--prune_mode` (`stages_from_masking_mode`). Values are checked
once, by `TrainConfig` (and `WeightPruningConfig`), which names the flag in its error.

Flagfiles: the shipped ones live in `configs/flags/` of the source tree (`FLAGFILE_DIR`). The CLIs parse
with `parse_flags`, which reads `--flagfile=glue_sst2.flags` from that folder when no such file exists
where the command runs, so `python -m ltp_tf.train --flagfile=glue_sst2.flags` works from the repository
root (and anywhere else); a flagfile path that exists is read as given.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any, Sequence

from absl import app, flags

from ltp_tf.sparsity import WeightPruningConfig
from ltp_tf.training.train_config import (STAGES, TrainConfig, check_prune_mode, parse_keep_rates, parse_stages,
                                          stages_from_masking_mode)

# configs/flags/ of the source tree (a checkout, or an editable install of it).
FLAGFILE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "configs", "flags")

# Flag names that are not their field's name.
FLAG_NAMES = {"mask_loss_weight": "lambda"}
# Fields without a flag: `weight_pruning` is made of the `WeightPruningConfig` flags; the op-name filters are
# set in a `--pruning_config_file`.
NOT_FLAGS = ("weight_pruning", "op_names", "excluded_op_names")

HELP = {
    # TrainConfig.
    "task": "GLUE task: sst2, mrpc, rte, stsb, cola, qnli, qqp or mnli (any case).",
    "stages": f"Comma-separated stages, run in the order {','.join(STAGES)}.",
    "model": "Pretrained encoder: a local Hugging Face folder (BERT, RoBERTa, XLM-RoBERTa, DistilBERT, ALBERT) "
             "or keras_hub preset. Default: the packaged MiniLM-L6.",
    "restore": "Checkpoint folder (written by ltp_tf.train) the first stage starts from.",
    "output_dir": "Where checkpoints and reports go.",
    "data_dir": "GLUE folder (<dir>/<TASK>/{train,dev}.tsv). Default: $LTP_TF_GLUE_DIR or ../shared/data/glue.",
    "data_source": "tsv (the glue_data TSV folders under --data_dir) or tfds (tensorflow-datasets glue/<task>, "
                   "--data_dir as its data folder).",
    "features_dir": "Tokenized features folder (NumPy): read if present, written first if not. Training from it "
                    "needs no TensorFlow.",
    "max_seq_length": "Tokens per example after truncation.",
    "max_train_examples": "Train on a fixed random subset of this many examples.",
    "max_eval_examples": "Evaluate on the first N examples of each dev split.",
    "seed": "Random seed (weights of new layers, dropout, batch order, subset).",
    "lr": "Learning rate of every stage without its own --<stage>_lr.",
    "epoch": "Epochs of every stage without its own --<stage>_epoch.",
    "bs": "Training batch size.",
    "eval_bs": "Evaluation batch size (default: --bs).",
    "finetune_lr": "Learning rate of the finetune stage.",
    "finetune_epoch": "Epochs of the finetune stage.",
    "soft_lr": "Learning rate of the soft stage.",
    "soft_epoch": "Epochs of the soft stage.",
    "hard_lr": "Learning rate of the hard stage and the topk/threshold baselines.",
    "hard_epoch": "Epochs of the hard stage and the topk/threshold baselines.",
    "threshold_lr": "Learning rate of the thresholds in the soft stage (default: the stage's learning rate, as LTP).",
    "weight_decay": "AdamW weight decay (never on biases, LayerNorms, thresholds).",
    "warmup_ratio": "Fraction of steps with linear learning-rate warm-up.",
    "max_grad_norm": "Global gradient-norm clipping (0: off).",
    "lr_scheduler_type": "linear (decay to 0 after warm-up) or constant.",
    "save_step": "Evaluate (and keep the best) every N steps instead of each epoch.",
    "no_load": "Keep the last weights of a stage instead of the best on dev.",
    "final_token_threshold": "Last layer's initial threshold; layer i of L starts at final_token_threshold * i / L.",
    "token_keep_rate": "Top-k baseline: keep rate of the last layer.",
    "token_keep_rates": "Top-k with one keep rate per layer (comma-separated, replaces --token_keep_rate's "
                        "schedule), e.g. an LTP model's kept ratios for top-k at equal FLOPs.",
    "scoring_mode": "Token importance: mean or length_normalized.",
    "temperature": "Soft-mask temperature T.",
    "mask_loss_weight": "Weight of the mask loss lambda * sum_layers mean(mask).",
    "soft_mask": "Soft-stage mask: sigmoid (LTP) or straight_through (hard forward pass as evaluated, sigmoid "
                 "gradient).",
    "target_flops_reduction": "Soft stage: reach this dense/pruned FLOPs ratio (e.g. 2) with a Lagrange multiplier "
                              "instead of a fixed --lambda.",
    "kd_weight": "> 0: distil the dense teacher's logits (T^2 KL; MSE for regression) in the soft/hard/topk/threshold "
                 "stages with this weight.",
    "kd_temperature": "Softmax temperature of --kd_weight.",
    "kd_hidden_weight": "> 0: also an MSE on the last-layer [CLS] state.",
    "teacher": "Dense checkpoint to distil from. Default: this run's finetune stage, else --restore when it is dense.",
    "jit_compile": "Compile training and evaluation steps with XLA. Unset: on GPU/TPU and on JAX, off for TensorFlow "
                   "on CPU (where XLA measured slower).",
    "mixed_precision": "auto (mixed_bfloat16 on GPU/TPU, float32 on CPU), float32, mixed_float16 or mixed_bfloat16.",
    "pad_to_multiple_of": "Batch widths are rounded up to a multiple of this.",
    "verbose": "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per period.",
    # Training past one device (ltp_tf.distribution).
    "distribution_strategy": "none, mirrored, multi_worker_mirrored (TF_CONFIG), tpu (TensorFlow backend) or "
                             "data_parallel (JAX backend). --bs is the global batch.",
    "tpu_address": "With --distribution_strategy=tpu: the TPU name or grpc address.",
    # WeightPruningConfig: the flags of Intel Neural Compressor's GLUE example (ltp_tf.sparsity).
    "do_prune": "Prune weights in structured patterns during the stages.",
    "target_sparsity": "Final weight sparsity.",
    "pruning_pattern": "NxM (e.g. 4x1), N:M (e.g. 2:4), 1xchannel or channelx1.",
    "pruning_frequency": "Optimizer steps between mask updates.",
    "sparsity_warm_epochs": "Epochs before the first mask update.",
    "cooldown_epochs": "Epochs after the last mask update.",
    "pruning_type": "magnitude, snip or snip_momentum.",
    "pruning_scope": "global (one ranking) or local (per layer).",
    "sparsity_decay_type": "exp, cos, linear or cube.",
    "max_sparsity_ratio_per_op": "Largest sparsity of one layer.",
    "min_sparsity_ratio_per_op": "Smallest sparsity of one layer.",
    "pruning_config_file": "JSON or YAML file of mixed per-layer configs.",
    "distill_loss_weight": "> 0: distil from the dense teacher with this weight.",
    "distill_mode": "hidden_mse (replaces the task loss, as the reference) or logits_kl (added to it).",
    "distill_temperature": "Softmax temperature of logits_kl.",
}

# The original LTP way of choosing a stage (`--masking_mode`, and `--prune_mode` from its config.json).
_LTP_STAGE_FLAGS = {
    "masking_mode": "LTP-style stage choice instead of --stages: soft (threshold search) or hard (hard stage on a "
                    "soft --restore; else the topk/threshold baseline).",
    "prune_mode": "With --masking_mode: topk or absolute_threshold. With --stages it must agree with the pruning "
                  "stages.",
}

_DEFINERS = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
             bool: flags.DEFINE_boolean}


def flag_name(field: str) -> str:
    """The command-line name of a `TrainConfig` or `WeightPruningConfig` field."""
    return FLAG_NAMES.get(field, field)


def _flag_fields(config_class: type) -> list[dataclasses.Field]:
    return [field for field in dataclasses.fields(config_class) if field.name not in NOT_FLAGS]


def _define(field: dataclasses.Field, field_type: Any, flag_values: flags.FlagValues) -> None:
    """One flag of the type (`X` or `X | None`) and default of `field` (unset without one); a tuple is
    comma-separated text."""
    default = None if field.default is dataclasses.MISSING else field.default
    kinds = ([field_type] if typing.get_origin(field_type) is tuple
             else [kind for kind in typing.get_args(field_type) if kind is not type(None)] or [field_type])
    if len(kinds) == 1 and typing.get_origin(kinds[0]) is tuple:
        kinds, default = [str], None if default is None else ",".join(map(str, default))
    if len(kinds) != 1 or kinds[0] not in _DEFINERS:
        raise TypeError(f"`{field.name}` has no flag type: {field_type}")
    _DEFINERS[kinds[0]](flag_name(field.name), default, HELP[field.name], flag_values=flag_values)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines the training flags in `flag_values` (once: a second call, from the other CLI, does nothing)."""
    if flag_values.find_module_defining_flag("task") == __name__:
        return
    for config_class in (TrainConfig, WeightPruningConfig):
        types = typing.get_type_hints(config_class)
        for field in _flag_fields(config_class):
            _define(field, types[field.name], flag_values)
    for name, help_text in _LTP_STAGE_FLAGS.items():
        flags.DEFINE_string(name, None, help_text, flag_values=flag_values)


def config_from_flags(flag_values: flags.FlagValues) -> TrainConfig:
    """The validated `TrainConfig` of the parsed flags (the only place that reads them)."""
    if flag_values["task"].value is None:
        raise ValueError("`--task` is required. Received: --task unset")
    values = {field.name: flag_values[flag_name(field.name)].value for field in _flag_fields(TrainConfig)}
    stages = parse_stages(values["stages"])
    masking_mode, prune_mode = flag_values["masking_mode"].value, flag_values["prune_mode"].value
    if masking_mode is not None:
        if flag_values["stages"].present:
            raise ValueError("Set one of `--stages` and `--masking_mode` (the original LTP way of choosing a stage). "
                             f"Received: --stages={values['stages']} --masking_mode={masking_mode}")
        stages = stages_from_masking_mode(masking_mode, prune_mode, _restore_stage(values["restore"]))
    elif prune_mode is not None:
        check_prune_mode(prune_mode, stages)
    return TrainConfig(**{**values, "stages": stages, "token_keep_rates": parse_keep_rates(values["token_keep_rates"]),
                          "weight_pruning": _weight_pruning(flag_values)})


def _weight_pruning(flag_values: flags.FlagValues) -> dict[str, Any] | None:
    """The weight-pruning settings of the parsed flags, or None when neither pruning nor distillation is on."""
    if not flag_values["do_prune"].value and not flag_values["distill_loss_weight"].value:
        return None
    return {field.name: flag_values[flag_name(field.name)].value for field in _flag_fields(WeightPruningConfig)}


def _restore_stage(restore: str | None) -> str | None:
    from ltp_tf.checkpoints import METADATA_FILE, read_checkpoint_info

    if restore is None or not os.path.isfile(os.path.join(restore, METADATA_FILE)):
        return None  # not a checkpoint: the config's checks say so
    return read_checkpoint_info(restore).stage


def resolve_flagfiles(argv: Sequence[str]) -> list[str]:
    """`argv` with each `--flagfile` that names no file here but a file of `FLAGFILE_DIR` pointed at that file."""
    resolved, follows_flagfile = list(argv[:1]), False
    for arg in argv[1:]:
        if follows_flagfile:  # `--flagfile NAME`
            arg = _flagfile_path(arg)
        else:
            for prefix in ("--flagfile=", "-flagfile="):
                if arg.startswith(prefix):
                    arg = prefix + _flagfile_path(arg[len(prefix):])
        follows_flagfile = arg in ("--flagfile", "-flagfile")
        resolved.append(arg)
        if arg == "--":  # the rest are not flags
            resolved.extend(argv[len(resolved):])
            break
    return resolved


def _flagfile_path(path: str) -> str:
    shipped = os.path.join(FLAGFILE_DIR, path)
    return shipped if not os.path.exists(path) and os.path.isfile(shipped) else path


def parse_flags(argv: list[str]) -> list[str]:
    """The CLIs' `app.run(main, flags_parser=parse_flags)`: absl's parsing, shipped flagfiles found by name."""
    return app.parse_flags_with_usage(resolve_flagfiles(argv))
