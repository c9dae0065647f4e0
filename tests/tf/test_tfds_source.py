"""The tensorflow-datasets source, on TFDS's own mock data for the real `glue/*` builders (nothing downloaded)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ltp_tf.data.glue import get_task
from ltp_tf.data.tfds_source import TEXT_FEATURES, read_tfds_split, tfds_split_name


@pytest.mark.parametrize("task, split", [("sst2", "train"), ("mrpc", "dev"), ("stsb", "dev"),
                                         ("mnli", "dev_mismatched")])
def test_reads_mock_glue_like_the_tsv_reader(task, split):
    with tfds.testing.mock_data(num_examples=7):
        examples = read_tfds_split(task, split)
    spec = get_task(task)
    assert len(examples) == 7 and len(examples.texts) == len(TEXT_FEATURES[task]) == (2 if spec.is_pair else 1)
    assert all(isinstance(text, str) for column in examples.texts for text in column)
    if spec.is_regression:
        assert examples.labels.dtype == np.float32
    else:
        assert examples.labels.dtype == np.int32 and set(examples.labels) <= set(range(spec.num_classes))


def test_mnli_labels_map_by_name():
    from ltp_tf.data.tfds_source import _label_map

    class Feature:
        names = ["entailment", "neutral", "contradiction"]  # TFDS order

    # ours: contradiction, entailment, neutral
    assert _label_map(get_task("mnli"), Feature()) == {0: 1, 1: 2, 2: 0}


def test_split_names_and_errors():
    assert tfds_split_name(get_task("sst2"), "dev") == "validation"
    assert tfds_split_name(get_task("mnli"), "dev_matched") == "validation_matched"
    with pytest.raises(ValueError, match="`split` must be one of \\['train', 'dev'\\]"):
        tfds_split_name(get_task("rte"), "test")


def test_pipeline_example_gen_and_transform_read_tfds(tmp_path):
    from ltp_tf.models.pretrained import packaged_minilm_path
    from pipelines.component import Pipeline
    from pipelines.pipeline import create_pipeline
    from pipelines.local_runner import LocalRunner

    full = create_pipeline(task="rte", data_dir=None, data_source="tfds", model_dir=packaged_minilm_path(),
                           max_seq_length=32, trainer={}, model_name="m", export_dir=str(tmp_path))
    data_steps = Pipeline("tfds", full.components[:2])
    with tfds.testing.mock_data(num_examples=5):
        results = LocalRunner(str(tmp_path / "root")).run(data_steps, log=lambda _: None)
    with np.load(str(tmp_path / "root" / "Transform" / "features" / results[1].outputs["features"].rsplit("/", 1)[1]
                     / "dev.npz")) as dev:
        assert dev["token_ids"].shape == (5, 32) and dev["segment_ids"].max() == 1  # pairs: [CLS] a [SEP] b [SEP]


def test_training_config_rejects_unknown_source():
    from ltp_tf.training.train_config import TrainConfig

    with pytest.raises(ValueError, match="`--data_source` must be one of \\['tsv', 'tfds'\\]. Received: --data_source=hf"):
        TrainConfig(task="sst2", data_source="hf")


def test_training_tokenizes_from_tfds(tmp_path):
    from ltp_tf.models.pretrained import packaged_minilm_path
    from ltp_tf.data import features as features_lib

    tokenizer = features_lib.Tokenizer.from_model(packaged_minilm_path(), 32)
    vocabulary = str(tmp_path / "vocab.txt")
    tokenizer.write_vocabulary(vocabulary)
    with tfds.testing.mock_data(num_examples=6):
        data = features_lib.tokenize_task(get_task("mrpc"), tokenizer, None, 32, vocabulary, data_source="tfds")
    assert len(data.train) == 6 and len(data.dev["dev"]) == 6
    assert data.train.features.token_ids.shape == (6, 32)
