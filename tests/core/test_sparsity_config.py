"""Weight pruning groups: validation errors, mixed-config files, kernel selection and precedence."""

import json

import keras
import numpy as np
import pytest

from ltp_tf.sparsity import WeightPruningConfig, WeightPruningGroup, find_plan, load_pruning_configs, prune
from ltp_tf.sparsity.kernels import einsum_kernel_view


def _model():
    inputs = keras.Input((6, 16))
    query = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 8), name="query")(inputs)
    hidden = keras.layers.Reshape((6, 16))(query)
    hidden = keras.layers.Dense(32, name="intermediate")(hidden)
    outputs = keras.layers.Dense(10, name="head")(hidden)
    return keras.Model(inputs, outputs, name="toy")


@pytest.mark.parametrize("kwargs, message", [
    ({"pattern": "3:2"}, r"`pattern` must be .* Received: pattern='3:2'"),
    ({"pattern": "0x4"}, r"`pattern` must be .* Received: pattern='0x4'"),
    ({"target_sparsity": 1.5}, r"`target_sparsity` must be a number in \[0, 1\). Received: target_sparsity=1.5"),
    ({"pattern": "2:4", "target_sparsity": 0.6}, r"`target_sparsity` must be <= N/M = 0.5 for pattern '2:4'"),
    ({"target_sparsity": 0.99}, r"`target_sparsity` must be <= max_sparsity_ratio_per_op \(0.98\)"),
    ({"pruning_type": "movement"}, r"`pruning_type` must be one of \['magnitude', 'snip', 'snip_momentum'\]"),
    ({"pruning_scope": "layer"},
     r"`pruning_scope` must be one of \['global', 'local'\]. Received: pruning_scope='layer'"),
    ({"sparsity_decay_type": "poly"}, r"`sparsity_decay_type` must be one of"),
    ({"min_sparsity_ratio_per_op": 1.0},
     r"`min_sparsity_ratio_per_op` must be a number in \[0, 1\). Received: min_sparsity_ratio_per_op=1.0"),
    ({"min_sparsity_ratio_per_op": 0.5, "max_sparsity_ratio_per_op": 0.4, "target_sparsity": 0.3},
     r"`min_sparsity_ratio_per_op` must be <= max_sparsity_ratio_per_op"),
    ({"op_names": []}, r"`op_names` must be a non-empty list of regular expressions. Received: op_names=\[\]"),
    ({"op_names": ["("]}, r"`op_names` must be a list of valid regular expressions"),
    ({"start_step": 0, "end_step": 0}, r"`start_step` must be >= 1 for a one-shot `snip_momentum` schedule"),
    ({"start_step": 5, "end_step": 3}, r"`end_step` must be an integer >= start_step \(5\). Received: end_step=3"),
])
def test_invalid_configs_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WeightPruningGroup(**{"start_step": 1, "end_step": 10, **kwargs})


def test_pruning_config_is_the_former_name_of_weight_pruning_group():
    import ltp_tf.sparsity

    assert ltp_tf.sparsity.PruningConfig is WeightPruningGroup
    assert "PruningConfig" in ltp_tf.sparsity.__all__ and "WeightPruningGroup" in ltp_tf.sparsity.__all__


def test_unknown_key_is_an_error():
    with pytest.raises(ValueError, match=r"Unknown pruning setting\(s\) \['sparsity'\]"):
        WeightPruningGroup.from_dict({"sparsity": 0.5})


def test_regex_matching_nothing_is_an_error():
    model = _model()
    with pytest.raises(ValueError, match=r"`op_names` of pruning config 1 must select at least one Dense or "
                                         r"EinsumDense kernel .* Received: op_names=\['attention_typo'\]"):
        prune(model, [WeightPruningGroup(start_step=1, end_step=2),
                      WeightPruningGroup(op_names=("attention_typo",), start_step=1, end_step=2)])
    assert find_plan(model, required=False) is None


@pytest.mark.parametrize("order", [0, 1])
def test_most_specific_config_wins_whatever_the_order(order):
    model = _model()
    catch_all = WeightPruningGroup(op_names=(".*",), pattern="4x1", pruning_scope="global", start_step=1, end_step=2)
    local = WeightPruningGroup(op_names=("query",), pattern="2:4", target_sparsity=0.5, pruning_scope="local",
                               start_step=1, end_step=2)
    configs = [catch_all, local] if order == 0 else [local, catch_all]
    plan = find_plan(prune(model, configs))
    owners = {k.path.split("/")[-2]: plan.configs[k.config_index].pattern for k in plan.kernels}
    assert owners == {"query": "2:4", "intermediate": "4x1"}
    # The head (32 -> 10) does not divide into 4x1 blocks: left dense and reported.
    assert [s.path for s in plan.skipped] == ["head/kernel"] and "does not fit" in plan.skipped[0].reason


def test_equally_specific_overlap_is_an_error():
    with pytest.raises(ValueError, match=r"Pruning configs \[0, 1\] both select kernel 'intermediate/kernel'"):
        prune(_model(), [WeightPruningGroup(op_names=("intermediate",), start_step=1, end_step=2),
                         WeightPruningGroup(op_names=("inter",), pattern="1x1", start_step=1, end_step=2)])


def test_attention_kernels_are_viewed_as_in_by_out_matrices():
    qkv = einsum_kernel_view("abc,cde->abde", (384, 12, 32))
    out = einsum_kernel_view("abcd,cde->abe", (12, 32, 384))
    assert (qkv.in_dim, qkv.out_dim, out.in_dim, out.out_dim) == (384, 384, 384, 384)
    kernel = np.random.default_rng(0).random((12, 32, 384))
    np.testing.assert_array_equal(out.from_matrix(out.to_matrix(kernel)), kernel)
    np.testing.assert_array_equal(out.to_matrix(kernel)[5 * 32 + 7], kernel[5, 7])  # row = (head, unit) input
    transposed = einsum_kernel_view("abc,dc->abd", (8, 4))  # kernel stored (out, in)
    matrix = transposed.to_matrix(np.arange(32).reshape(8, 4))
    assert matrix.shape == (4, 8) and matrix[1, 2] == 2 * 4 + 1
    with pytest.raises(ValueError, match="not one matrix product"):
        einsum_kernel_view("abc,bcd->abd", (6, 16, 8))


def test_mixed_config_file_json_and_yaml(tmp_path):
    entries = {"target_sparsity": 0.6, "pruning_configs": [
        {"op_names": ["query"], "pattern": "2:4", "target_sparsity": 0.5, "pruning_scope": "local"},
        {"op_names": ["intermediate"], "pattern": "1xchannel"}]}
    json_path = tmp_path / "mixed.json"
    json_path.write_text(json.dumps(entries))
    yaml_path = tmp_path / "mixed.yaml"
    yaml_path.write_text("target_sparsity: 0.6\npruning_configs:\n"
                         "  - {op_names: [query], pattern: '2:4', target_sparsity: 0.5, pruning_scope: local}\n"
                         "  - {op_names: [intermediate], pattern: 1xchannel}\n")
    defaults = WeightPruningGroup(start_step=3, end_step=9, pruning_frequency=3).to_dict()
    for path in (json_path, yaml_path):
        first, second = load_pruning_configs(str(path), defaults)
        assert (first.pattern, first.target_sparsity, first.pruning_scope, first.start_step) == ("2:4", 0.5, "local", 3)
        assert (second.pattern, second.target_sparsity, second.pruning_scope) == ("1xchannel", 0.6, "global")


def test_mixed_config_file_errors(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"pruning_configs": [{"op_names": ["x"], "patern": "4x1"}]}))
    message = r"bad.json: `pruning_configs\[0\]`: Unknown pruning setting\(s\) \['patern'\]"
    with pytest.raises(ValueError, match=message):
        load_pruning_configs(str(path))
    path.write_text(json.dumps({"target_sparsity": 0.5}))
    with pytest.raises(ValueError, match="expected a mapping with a non-empty list `pruning_configs`"):
        load_pruning_configs(str(path))
    with pytest.raises(FileNotFoundError, match="Pruning config file not found"):
        load_pruning_configs(str(tmp_path / "missing.json"))


def test_weight_pruning_config_lays_the_schedule_on_epochs():
    config = WeightPruningConfig.from_dict({"do_prune": True, "target_sparsity": 0.5, "pruning_pattern": "2:4",
                                            "pruning_frequency": 50, "sparsity_warm_epochs": 1,
                                            "cooldown_epochs": 5, "op_names": ".*"})
    (pruning,) = config.pruning_configs(steps_per_epoch=230, epochs=15)
    assert (pruning.start_step, pruning.end_step, pruning.pruning_frequency) == (230, 2300, 50)
    assert pruning.excluded_op_names == ("pooled_dense",) and pruning.pattern == "2:4"
    assert WeightPruningConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("values, message", [
    ({"pruning_pattern": "3:2"}, r"`pattern` must be .* Received: pattern='3:2'"),
    ({"target_sparsity": 1.5}, r"`target_sparsity` must be a number in \[0, 1\). Received: target_sparsity=1.5"),
    ({"sparsity_warm_epochs": -1}, r"`sparsity_warm_epochs` must be a number >= 0. Received: sparsity_warm_epochs=-1"),
    ({"distill_mode": "attention"}, r"`distill_mode` must be one of \['hidden_mse', 'logits_kl'\]"),
    ({"do_prune": "yes"}, r"`do_prune` must be a bool. Received: do_prune='yes'"),
    ({"prune": True}, r"Unknown weight pruning setting\(s\) \['prune'\]"),
])
def test_weight_pruning_config_errors(values, message):
    with pytest.raises(ValueError, match=message):
        WeightPruningConfig.from_dict(values)


def test_cooldown_leaving_no_pruning_steps_is_an_error():
    config = WeightPruningConfig(do_prune=True, sparsity_warm_epochs=2, cooldown_epochs=2)
    with pytest.raises(ValueError, match=r"`sparsity_warm_epochs` \+ `cooldown_epochs` must leave training steps"):
        config.pruning_configs(steps_per_epoch=10, epochs=3)
