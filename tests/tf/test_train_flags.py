"""The training flags (`ltp_tf.training.flags`): one per config field with its default, every flagfile parses
into a valid config, LTP-style flags map onto stages, a shipped flagfile is found by name, and bad values fail
before any work with a message naming the flag (also through the real command lines)."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from absl import flags

from ltp_tf.data.glue import TASKS
from ltp_tf.sparsity import WeightPruningConfig
from ltp_tf.training.flags import (FLAGFILE_DIR, HELP, NOT_FLAGS, config_from_flags, define_flags, flag_name,
                                   resolve_flagfiles)
from ltp_tf.training.layout import stage_dir
from ltp_tf.training.train_config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The LTP recipe flagfiles, one per task (other glue_*.flags files belong to other features).
FLAGFILES = [os.path.join(REPO, "configs", "flags", f"glue_{task}.flags") for task in sorted(TASKS)]
SHIPPED = sorted(os.path.join(FLAGFILE_DIR, name) for name in os.listdir(FLAGFILE_DIR))


def _flag_values(*args):
    flag_values = flags.FlagValues()
    define_flags(flag_values)
    flag_values(["ltp_tf.train", *args])
    return flag_values


def _config(*args):
    return config_from_flags(_flag_values(*args))


def test_one_flagfile_per_task():
    missing = [path for path in FLAGFILES if not os.path.isfile(path)]
    assert not missing
    assert os.path.realpath(FLAGFILE_DIR) == os.path.realpath(os.path.join(REPO, "configs", "flags"))


@pytest.mark.parametrize("path", SHIPPED, ids=os.path.basename)
def test_every_shipped_flagfile_is_a_valid_config(path):
    assert path.endswith(".flags")
    config = _config(f"--flagfile={path}")
    assert os.path.basename(path).startswith(f"glue_{config.task_spec.name}")


def test_one_flag_per_field_with_the_fields_default():
    flag_values = _flag_values()
    for config_class in (TrainConfig, WeightPruningConfig):
        for field in dataclasses.fields(config_class):
            if field.name in NOT_FLAGS:
                continue
            flag = flag_values[flag_name(field.name)]
            default = None if field.default is dataclasses.MISSING else field.default
            assert flag.default == (",".join(default) if isinstance(default, tuple) else default), field.name
            assert flag.help == HELP[field.name] and flag.help, field.name
    fields = {f.name for c in (TrainConfig, WeightPruningConfig) for f in dataclasses.fields(c)}
    assert set(HELP) == fields - set(NOT_FLAGS)  # no help text for a field that is gone
    assert _config("--task=sst2") == TrainConfig(task="sst2")  # unset flags are the config's defaults


def test_define_flags_twice_is_harmless():
    flag_values = _flag_values("--task=rte")
    define_flags(flag_values)  # what importing both CLIs in one process does
    assert config_from_flags(flag_values).task == "rte"


def test_weight_pruning_flags_become_its_config():
    assert _config("--task=sst2").weight_pruning is None
    config = _config("--task=sst2", "--do_prune", "--pruning_pattern=2:4", "--target_sparsity=0.5")
    assert WeightPruningConfig.from_dict(config.weight_pruning) == WeightPruningConfig(
        do_prune=True, pruning_pattern="2:4", target_sparsity=0.5)
    assert _config("--task=sst2", "--distill_loss_weight=1").weight_pruning["distill_loss_weight"] == 1.0


def test_a_shipped_flagfile_is_found_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shipped = os.path.join(FLAGFILE_DIR, "glue_sst2.flags")
    assert resolve_flagfiles(["prog", "--flagfile=glue_sst2.flags", "--lr=1"]) == [
        "prog", f"--flagfile={shipped}", "--lr=1"]
    assert resolve_flagfiles(["prog", "--flagfile", "glue_sst2.flags"]) == ["prog", "--flagfile", shipped]
    # A file where the command runs wins; names that are nowhere, and arguments after `--`, are left to absl.
    (tmp_path / "glue_sst2.flags").write_text("--task=rte\n")
    assert resolve_flagfiles(["prog", "--flagfile=glue_sst2.flags"]) == ["prog", "--flagfile=glue_sst2.flags"]
    assert _config("--flagfile=glue_sst2.flags").task == "rte"
    assert resolve_flagfiles(["prog", "--flagfile=nope.flags", "--", "--flagfile=glue_mrpc.flags"]) == [
        "prog", "--flagfile=nope.flags", "--", "--flagfile=glue_mrpc.flags"]


@pytest.mark.parametrize("path", [p for p in FLAGFILES if os.path.basename(p) != "glue_sst2.flags"],
                         ids=os.path.basename)
def test_flagfile_gives_the_ltp_recipe(path):
    """Every task's flagfile is the paper's recipe (the main job's is the FLOPs-target one, tested below)."""
    config = _config(f"--flagfile={path}")
    assert os.path.basename(path) == f"glue_{config.task_spec.name}.flags"
    assert config.stages == ("finetune", "soft", "hard")
    soft, hard = config.stage_settings("soft"), config.stage_settings("hard")
    assert soft.lr == 2e-5 and soft.threshold_lr == 2e-5  # LTP: thresholds default to the model's lr
    assert 0.5e-5 <= hard.lr <= 2e-5  # the paper's {0.5, 1, 2}e-5
    assert config.temperature == 1e-3 and 0.01 <= config.mask_loss_weight <= 0.2 and config.weight_decay == 0
    assert config.scoring_mode == "mean"


def test_sst2_flagfile_is_the_cpu_main_job():
    config = _config(f"--flagfile={os.path.join(FLAGFILE_DIR, 'glue_sst2.flags')}")
    assert config.max_train_examples is not None and config.max_train_examples <= 10000
    assert config.max_seq_length <= 64
    assert config.stages == ("finetune", "soft", "hard")
    assert config.target_flops_reduction == 2.0 and config.distils("soft") and config.distils("hard")
    assert config.soft_mask == "straight_through" and config.stage_settings("soft").threshold_lr == 2e-4


def test_roberta_flagfile_is_the_papers_setting():
    config = _config(f"--flagfile={os.path.join(FLAGFILE_DIR, 'glue_sst2_roberta.flags')}")
    assert config.stages == ("finetune", "soft", "hard") and config.task_spec.name == "sst2"
    assert config.final_token_threshold == 0.01 and config.max_seq_length == 128 and config.max_train_examples is None
    soft, hard = config.stage_settings("soft"), config.stage_settings("hard")
    assert (soft.lr, soft.epoch, hard.lr, hard.epoch) == (2e-5, 1, 1e-5, 5) and config.temperature == 1e-3


def test_flags_map_onto_config(tmp_path):
    config = _config("--task=SST2", "--stages=finetune,topk", "--lr=3e-5", "--lambda=0.05", "--bs=16",
                     "--save_step=100", "--no_load", "--token_keep_rate=0.2", f"--output_dir={tmp_path}",
                     "--nojit_compile", "--mixed_precision=float32")
    assert config.task_spec.name == "sst2" and config.stages == ("finetune", "topk")
    assert (config.lr, config.mask_loss_weight, config.bs, config.save_step) == (3e-5, 0.05, 16, 100)
    assert config.no_load and not config.jit_compile and config.pruning_config("topk").token_keep_rate == 0.2


def test_flops_target_and_distillation_flags_map_onto_config():
    config = _config("--task=mrpc", "--stages=finetune,soft,hard", "--target_flops_reduction=2", "--kd_weight=0.5",
                     "--kd_temperature=2", "--kd_hidden_weight=0.1", "--soft_mask=straight_through", "--lambda=0.3")
    assert (config.target_flops_reduction, config.kd_weight, config.kd_temperature, config.kd_hidden_weight) == (
        2.0, 0.5, 2.0, 0.1)
    soft = config.pruning_config("soft")
    assert soft.mask_loss_weight == 0.0 and soft.soft_mask == "straight_through"  # the target replaces lambda
    assert config.objective_settings("soft")["target_flops_reduction"] == 2.0
    assert "target_flops_reduction" not in config.objective_settings("hard") and config.distils("hard")
    assert not config.distils("finetune")


def test_per_layer_keep_rates_flag_maps_onto_the_topk_stage():
    config = _config("--task=mrpc", "--stages=finetune,topk", "--token_keep_rates=1,1,0.8,0.5,0.3,0.25")
    assert config.token_keep_rates == (1.0, 1.0, 0.8, 0.5, 0.3, 0.25)
    assert config.pruning_config("topk").token_keep_rates == config.token_keep_rates
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert stage_dir(config, "topk").endswith(os.path.join("topk", "rates_1-1-0.8-0.5-0.3-0.25", "lr_2e-05"))
    with pytest.raises(ValueError, match="`--token_keep_rates` must be comma-separated numbers"):
        _config("--task=mrpc", "--stages=finetune,topk", "--token_keep_rates=1,half")


def test_unset_jit_compile_means_auto():
    assert _config("--task=sst2").jit_compile is None
    assert _config("--task=sst2", "--jit_compile").jit_compile is True


def _fake_checkpoint(folder, stage):
    os.makedirs(folder)
    for name in ("model.keras", "vocab.txt"):
        open(os.path.join(folder, name), "w").close()
    with open(os.path.join(folder, "checkpoint.json"), "w") as f:
        json.dump({"task": "sst2", "max_seq_length": 128, "stage": stage}, f)
    return folder


def test_masking_mode_picks_the_stage_like_ltp(tmp_path):
    soft_ckpt = _fake_checkpoint(str(tmp_path / "soft"), "soft")
    dense_ckpt = _fake_checkpoint(str(tmp_path / "dense"), "finetune")
    assert _config("--task=sst2", "--masking_mode=soft", f"--restore={dense_ckpt}").stages == ("soft",)
    assert _config("--task=sst2", "--masking_mode=hard", f"--restore={soft_ckpt}").stages == ("hard",)
    assert _config("--task=sst2", "--masking_mode=hard", f"--restore={dense_ckpt}").stages == ("threshold",)
    assert _config("--task=sst2", "--masking_mode=hard", "--prune_mode=topk",
                   f"--restore={dense_ckpt}").stages == ("topk",)


@pytest.mark.parametrize("args, message", [
    ((), "`--task` is required"),
    (("--task=sst2", "--stages=soft", "--masking_mode=soft"), "Set one of `--stages` and `--masking_mode`"),
    (("--task=sst2", "--stages=finetune,topk", "--prune_mode=absolute_threshold"), "`--prune_mode` must be topk or"),
    (("--task=sst2", "--stages=finetune,distill"), "unknown: distill"),
    (("--task=sst2", "--epoch=0"), "`--epoch` must be an integer >= 1. Received: --epoch=0"),
    (("--task=sst2", "--threshold_lr=-1e-3"), "`--threshold_lr` must be > 0. Received: --threshold_lr=-0.001"),
    (("--task=sst2", "--target_flops_reduction=1"), "`--target_flops_reduction` must be > 1"),
    (("--task=sst2", "--stages=finetune", "--kd_weight=1"), "none runs"),
    (("--task=sst2", "--teacher=/nonexistent/x"), "`--teacher` is the model to distil from"),
    (("--task=sst2", "--soft_mask=hard"), "`--soft_mask` must be one of"),
    (("--task=sst2", "--kd_weight=1", "--do_prune", "--distill_loss_weight=1"),
     "`--distill_loss_weight` \\(weight pruning's distillation\\) does not combine"),
])
def test_invalid_flags(args, message):
    with pytest.raises(ValueError, match=message):
        _config(*args)


def _cli(*args, module="ltp_tf.train"):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_cli_rejects_bad_values_before_any_work(tmp_path):
    result = _cli("--task=sst2", "--lr=-1", f"--output_dir={tmp_path}")
    assert result.returncode != 0
    assert "`--lr` must be > 0. Received: --lr=-1" in result.stderr
    # The documented command, from the repository root: the flagfile is found in configs/flags/.
    result = _cli("--flagfile=glue_qnli.flags", f"--output_dir={tmp_path}")
    assert result.returncode != 0
    assert os.path.join("QNLI", "train.tsv") in result.stderr and "not found" in result.stderr
    assert os.listdir(tmp_path) == []  # nothing written


def test_pipeline_cli_reads_the_same_flags(tmp_path):
    result = _cli("--flagfile=glue_sst2.flags", "--lambda=-1", f"--pipeline_root={tmp_path}",
                  module="pipelines.glue_ltp")
    assert result.returncode != 0
    assert "pipelines.glue_ltp: error: `--lambda` must be >= 0. Received: --lambda=-1" in result.stderr
    assert os.listdir(tmp_path) == []
