import json

import pytest

from ltp_tf.token_pruning_config import TokenPruningConfig


def test_defaults_are_dense_and_hard():
    config = TokenPruningConfig()
    assert config.prune_mode == "none" and config.masking_mode == "hard" and not config.learned


def test_json_round_trip():
    config = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="soft", final_token_threshold=0.02,
                                temperature=2e-3, mask_loss_weight=0.05)
    assert TokenPruningConfig.from_json(config.to_json()) == config
    assert config.learned


def test_reads_ltp_checkpoint_config_with_lambda_alias(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "hidden_size": 768, "prune_mode": "topk", "token_keep_rate": 0.4, "scoring_mode": "mean",
        "masking_mode": "hard", "lambda": 0.2, "final_token_threshold": 0.01, "temperature": 1e-3}))
    config = TokenPruningConfig.from_checkpoint_config(tmp_path)
    assert config.prune_mode == "topk" and config.token_keep_rate == 0.4 and config.mask_loss_weight == 0.2


def test_missing_checkpoint_config_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        TokenPruningConfig.from_checkpoint_config(tmp_path)


@pytest.mark.parametrize("field, value, message", [
    ("prune_mode", "random", "`prune_mode` must be one of"),
    ("masking_mode", "medium", "`masking_mode` must be one of"),
    ("scoring_mode", "max", "`scoring_mode` must be one of"),
    ("final_token_threshold", 1.5, "`final_token_threshold` must be a number in \\[0, 1\\)"),
    ("final_token_threshold", -0.1, "Received: final_token_threshold=-0.1"),
    ("token_keep_rate", 1.2, "`token_keep_rate` must be a finite number <= 1"),
    ("temperature", 0.0, "`temperature` must be a finite number > 0"),
    ("mask_loss_weight", -1.0, "`mask_loss_weight` must be a finite number >= 0"),
    ("score_reference_length", 0, "`score_reference_length` must be an integer >= 1"),
])
def test_invalid_values_name_field_and_value(field, value, message):
    kwargs = {"prune_mode": "absolute_threshold", field: value}
    with pytest.raises(ValueError, match=message):
        TokenPruningConfig(**kwargs)


def test_negative_keep_rate_is_allowed():
    assert TokenPruningConfig(prune_mode="topk", token_keep_rate=-0.5).token_keep_rate == -0.5


def test_soft_needs_thresholds():
    with pytest.raises(ValueError, match="needs prune_mode='absolute_threshold'"):
        TokenPruningConfig(prune_mode="topk", masking_mode="soft")


def test_unknown_key_is_an_error_unless_ignored():
    with pytest.raises(ValueError, match="Unknown token-pruning setting 'hidden_size'"):
        TokenPruningConfig.from_dict({"hidden_size": 3})
    assert TokenPruningConfig.from_dict({"hidden_size": 3}, ignore_unknown=True) == TokenPruningConfig()


def test_active_settings_hold_only_what_the_mode_reads():
    assert TokenPruningConfig(mask_loss_weight=0.3, token_keep_rate=0.2).active_settings() == {"prune_mode": "none"}
    topk = TokenPruningConfig(prune_mode="topk", token_keep_rate=0.4, temperature=0.5).active_settings()
    assert topk["token_keep_rate"] == 0.4 and "temperature" not in topk and "final_token_threshold" not in topk
    hard = TokenPruningConfig(prune_mode="absolute_threshold", final_token_threshold=0.03).active_settings()
    assert hard["final_token_threshold"] == 0.03 and "mask_loss_weight" not in hard
    soft = TokenPruningConfig(prune_mode="absolute_threshold", masking_mode="soft", temperature=2e-3,
                              mask_loss_weight=0.05).active_settings()
    assert soft["temperature"] == 2e-3 and soft["mask_loss_weight"] == 0.05 and soft["masking_mode"] == "soft"
