"""`BenchmarkConfig` (`ltp_tf.benchmarking.dense_vs_pruned`): flag strings parsed, bad settings refused up front."""

import pytest

from ltp_tf.benchmarking.dense_vs_pruned import BenchmarkConfig, ModelLimitError
from ltp_tf.benchmarking.engines import ENGINES, EngineSettings


def test_defaults_and_list_flags_parsed_to_ints():
    config = BenchmarkConfig()
    assert config.engines == ENGINES and config.batch_sizes == (32, 128) and config.length_scan == (4, 8, 16, 32, 64)
    config = BenchmarkConfig(engines=["keras"], batch_sizes=["4", "16"], long_lengths=["128"], length_scan=[],
                             datasets=["mrpc", "rte"], length_bucket=4, threads=2)
    assert (config.batch_sizes, config.long_lengths, config.length_scan) == ((4, 16), (128,), ())
    assert config.engines == ("keras",) and config.datasets == ("mrpc", "rte")
    assert config.engine_settings == EngineSettings(length_bucket=4, threads=2)


@pytest.mark.parametrize("settings, message", [
    ({"engines": []}, "`--engines` must be a non-empty list from"),
    ({"engines": ["keras", "tflite"]}, r"Received: --engines=keras,tflite"),
    ({"batch_sizes": ["1", "32"]}, r"`--batch_sizes` must be integers >= 2 \(batch 1 is the latency run\)"),
    ({"batch_sizes": ["x"]}, "`--batch_sizes` must be integers >= 2"),
    ({"batch_sizes": []}, "`--batch_sizes` must name at least one"),
    ({"long_lengths": ["1"]}, "`--long_lengths` must be integers >= 2. Received: --long_lengths=1"),
    ({"length_scan": ["0"]}, "`--length_scan` must be integers >= 1"),
    ({"datasets": ["sst2", "nope"]}, "`--datasets`: "),
    ({"task": "nope"}, "`--task`: "),
    ({"latency_examples": 0}, "`--latency_examples` must be an integer >= 1"),
    ({"calibration_examples": -1}, "`--calibration_examples` must be an integer >= 0"),
    ({"max_examples": 0}, "`--max_examples` must be an integer >= 1"),
    ({"min_timed_calls": 0}, "`--min_timed_calls` must be an integer >= 1"),
    ({"length_bucket": 0}, "`length_bucket` must be an integer >= 1"),
    ({"threads": 0}, "`threads` must be None or an integer >= 1"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        BenchmarkConfig(**settings)


def test_lengths_beyond_the_models_positions_are_refused():
    BenchmarkConfig(long_lengths=["512"], length_scan=["512"]).check_lengths(512)
    with pytest.raises(ModelLimitError, match="`--long_lengths` must be <= the model's 128 positions"):
        BenchmarkConfig(long_lengths=["256"]).check_lengths(128)
    with pytest.raises(ModelLimitError, match=r"`--length_scan` must be integers in \[1, 64\]"):
        BenchmarkConfig(length_scan=["4", "128"]).check_lengths(64)
