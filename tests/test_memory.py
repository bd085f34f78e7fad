"""The model's memory of its training inputs: an adapted Normalization layer and the preprocessing what-if."""

import keras
import numpy as np
import pytest

import whyzero
from whyzero.gallery import data
from whyzero.memory import PREPROCESSINGS, recover_raw


@pytest.fixture(scope="module")
def normalized_model():
    x, _ = data.breast_cancer()
    norm = keras.layers.Normalization(name="standardize")
    norm.adapt(x)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((30,)), norm, keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    return model, x


def test_raw_features_match_the_normalization_layer(normalized_model):
    model, x = normalized_model
    d = whyzero.diagnose(model, x[:64])
    assert d.summaries["inputs"]["normalization"]["layer"] == "standardize"
    assert not {"input.range_mismatch", "input.double_normalization"} & d.causes()


def test_standardized_twice_is_found_from_the_layer_alone(normalized_model):
    model, x = normalized_model
    z = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    d = whyzero.diagnose(model, z[:64])
    finding = d.find("input.double_normalization")[0]
    assert finding.severity == "critical" and finding.layer == "standardize"
    assert finding.evidence["std_ratio"] < 0.05


@pytest.mark.parametrize("name", ["none", "unit", "symmetric"])
def test_recover_raw_inverts_the_standard_preprocessings(name):
    raw = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.float64)
    raw[0, 0, 0] = [0, 0, 0]
    raw[0, 0, 1] = [255, 255, 255]
    back, _ = recover_raw(PREPROCESSINGS[name](raw))
    assert np.allclose(back, raw, atol=1e-6)


def test_whatif_names_the_preprocessing_that_matches(diagnosed):
    d = diagnosed("photos_wrong_normalization")
    whatif = d.summaries["inputs"]["whatif"]
    assert whatif["best"] == "unit"
    scores = {c["name"]: c["score"] for c in whatif["candidates"]}
    assert scores["unit"] < 0.5 * scores["as given"]
    assert d.find("input.range_mismatch")[0].evidence["best_match"] == "unit"
