"""Shared test setup: quiet TensorFlow, fixed seeds, and the real-data locations."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def glue_dir():
    """The real GLUE data; its absence is a failure, not a skip."""
    from ltp_tf.data import default_glue_dir

    path = default_glue_dir()
    assert os.path.isdir(path), f"Real GLUE data expected at {path} (see ../shared/data/glue/SOURCES.md)"
    return path
