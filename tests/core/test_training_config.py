"""`TrainConfig`: validation messages name the flag and value, stage resolution, per-stage settings, layout."""

import os

import pytest

from ltp_tf.training import layout
from ltp_tf.training.train_config import TrainConfig, check_prune_mode, parse_stages, stages_from_masking_mode


@pytest.mark.parametrize("changes, message", [
    ({"lr": -1.0}, "`--lr` must be > 0. Received: --lr=-1"),
    ({"hard_lr": 0.0}, "`--hard_lr` must be > 0. Received: --hard_lr=0"),
    ({"epoch": 0}, "`--epoch` must be an integer >= 1. Received: --epoch=0"),
    ({"bs": 2.5}, "`--bs` must be an integer >= 1. Received: --bs=2.5"),
    ({"save_step": 0}, "`--save_step` must be an integer >= 1. Received: --save_step=0"),
    ({"max_seq_length": 1024}, r"`--max_seq_length` must be an integer in \[8, 512\]. Received: --max_seq_length=1024"),
    ({"temperature": 0.0}, "`--temperature` must be > 0. Received: --temperature=0"),
    ({"mask_loss_weight": -0.1}, "`--lambda` must be >= 0. Received: --lambda=-0.1"),
    ({"final_token_threshold": 1.0}, r"`--final_token_threshold` must be in \[0, 1\). Received: --final_token_threshold=1"),
    ({"token_keep_rate": 1.5}, "`--token_keep_rate` must be <= 1"),
    ({"stages": ("finetune", "topk"), "token_keep_rates": (1.0, 1.5)},
     r"`--token_keep_rates` must be one rate in \(0, 1\] per encoder layer.*Received: --token_keep_rates=1.0,1.5"),
    ({"token_keep_rates": (1.0, 0.5)}, "for the topk stage.*--stages=finetune,soft,hard"),
    ({"warmup_ratio": 1.0}, r"`--warmup_ratio` must be in \[0, 1\)"),
    ({"weight_decay": float("nan")}, "`--weight_decay` must be >= 0. Received: --weight_decay=nan"),
    ({"scoring_mode": "max"}, r"`--scoring_mode` must be one of \['mean', 'length_normalized'\]. Received: --scoring_mode=max"),
    ({"mixed_precision": "fp8"}, "`--mixed_precision` must be one of"),
    ({"verbose": 3}, "`--verbose` must be 0, 1 or 2"),
    ({"task": "imdb"}, "`--task` must be a GLUE task.*Received: --task=imdb"),
    ({"stages": ("soft", "finetune")}, "`--stages` must be in run order"),
    ({"stages": ("soft",)}, "stage 'soft' starts from a fine-tuned model: add 'finetune' to --stages or pass --restore"),
    ({"stages": ("finetune", "hard")}, "stage 'hard' starts from a soft-stage checkpoint"),
    ({"stages": ("tokenize",)}, "`--stages=tokenize` writes features to --features_dir"),
    ({"model": "x", "restore": "y"}, "Set one of `--model`"),
    ({"restore": "./no/such/folder"}, "`--restore` must be an existing folder. Received: --restore=./no/such/folder"),
    ({"distribution_strategy": "horovod"}, "`--distribution_strategy` must be one of"),
    ({"lr_scheduler_type": "cosine"}, "`--lr_scheduler_type` must be one of"),
    ({"weight_pruning": {"do_prune": True, "pruning_pattern": "3:2"}}, "`pattern` must be"),
])
def test_invalid_values_name_flag_and_value(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{"task": "sst2", **changes})


def test_restore_must_be_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="`--restore` must be a checkpoint folder"):
        TrainConfig(task="sst2", stages=("soft",), restore=str(tmp_path))


def test_parse_stages_orders_and_rejects():
    assert parse_stages("hard, soft,finetune") == ("finetune", "soft", "hard")
    assert parse_stages(["topk", "finetune"]) == ("finetune", "topk")
    with pytest.raises(ValueError, match="unknown: prune"):
        parse_stages("finetune,prune")
    with pytest.raises(ValueError, match="must not repeat"):
        parse_stages("soft,soft")
    with pytest.raises(ValueError, match="at least one"):
        parse_stages(" , ")


def test_stage_settings_fall_back_to_global_values():
    config = TrainConfig(task="sst2", lr=3e-5, epoch=4, finetune_lr=5e-5, hard_epoch=2, threshold_lr=1e-3)
    finetune = config.stage_settings("finetune")
    assert (finetune.lr, finetune.epoch, finetune.threshold_lr) == (5e-5, 4, 1e-3)
    soft = config.stage_settings("soft")
    assert (soft.lr, soft.epoch, soft.threshold_lr) == (3e-5, 4, 1e-3)
    for stage in ("hard", "topk", "threshold"):
        assert config.stage_settings(stage).epoch == 2
    assert TrainConfig(task="sst2", soft_lr=7e-5).stage_settings("soft").threshold_lr == 7e-5


def test_pruning_config_per_stage():
    config = TrainConfig(task="sst2", final_token_threshold=0.02, temperature=5e-4, mask_loss_weight=0.2,
                         token_keep_rate=0.3)
    assert config.pruning_config("finetune").prune_mode == "none"
    soft = config.pruning_config("soft")
    assert (soft.prune_mode, soft.masking_mode, soft.learned) == ("absolute_threshold", "soft", True)
    assert (soft.final_token_threshold, soft.temperature, soft.mask_loss_weight) == (0.02, 5e-4, 0.2)
    assert config.pruning_config("hard").masking_mode == "hard"
    assert config.pruning_config("threshold").prune_mode == "absolute_threshold"
    topk = config.pruning_config("topk")
    assert (topk.prune_mode, topk.token_keep_rate) == ("topk", 0.3)
    with pytest.raises(ValueError, match="`stage` must be one of"):
        config.pruning_config("tokenize")


def test_prune_mode_must_match_the_pruning_stages():
    check_prune_mode("topk", ("tokenize", "finetune", "topk"))
    check_prune_mode("absolute_threshold", ("finetune", "soft", "hard", "threshold"))
    for prune_mode, stages in [("topk", ("finetune", "soft")), ("absolute_threshold", ("topk",)),
                               ("topk", ("topk", "threshold")), ("none", ("finetune",))]:
        with pytest.raises(ValueError, match="`--prune_mode` must be topk or absolute_threshold and match"):
            check_prune_mode(prune_mode, stages)


def test_masking_mode_means_what_it_meant_in_ltp():
    assert stages_from_masking_mode("soft", None, None) == ("soft",)
    assert stages_from_masking_mode("hard", "absolute_threshold", "soft") == ("hard",)
    assert stages_from_masking_mode("hard", "absolute_threshold", "finetune") == ("threshold",)
    assert stages_from_masking_mode("hard", "topk", "finetune") == ("topk",)
    with pytest.raises(ValueError, match="needs --prune_mode=absolute_threshold"):
        stages_from_masking_mode("soft", "topk", None)
    with pytest.raises(ValueError, match="`--masking_mode` must be one of"):
        stages_from_masking_mode("mixed", None, None)


def test_ltp_folder_layout(tmp_path):
    out = str(tmp_path)
    config = TrainConfig(task="sst-2", output_dir=out, stages=("finetune", "soft", "hard", "topk", "threshold"),
                         finetune_lr=4e-5, soft_lr=2e-5, hard_lr=1e-5, temperature=1e-3, mask_loss_weight=0.1)
    finetune = os.path.join(out, "SST2", "finetune", "lr_4e-05")
    soft = os.path.join(out, "SST2", "absolute_threshold", "rate_0.01", "temperature_0.001", "lambda_0.1", "lr_2e-05")
    assert layout.stage_dir(config, "finetune") == finetune
    assert layout.stage_dir(config, "soft") == soft
    assert layout.stage_dir(config, "hard") == os.path.join(soft, "hard", "lr_1e-05")
    assert layout.stage_dir(config, "topk") == os.path.join(finetune, "topk", "rate_0.5", "lr_1e-05")
    assert layout.stage_dir(config, "threshold") == os.path.join(finetune, "hard", "rate_0.01", "lr_1e-05")
    assert layout.work_dir(soft) == soft + ".work"
    assert layout.task_dir(TrainConfig(task="STS-B", output_dir=out)) == os.path.join(out, "STSB")


def test_round_trip_through_dict():
    config = TrainConfig(task="mrpc", stages=("finetune", "topk"), token_keep_rate=0.2, mask_loss_weight=0.05)
    values = config.to_dict()
    assert values["stages"] == ["finetune", "topk"]
    assert TrainConfig.from_dict(values) == config
    values["lambda"] = values.pop("mask_loss_weight")
    assert TrainConfig.from_dict(values) == config
