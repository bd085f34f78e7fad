"""Checks on literal measurements: each fires on the fault and stays quiet on the healthy twin."""

import numpy as np

from whyzero.checks.gradients import learning_rate, update_ratio, vanishing_exploding
from whyzero.checks.inputs import unnormalized
from whyzero.checks.labels import target_scale
from whyzero.checks.model import weight_init
from whyzero.context import Context, Task
from whyzero.probes.forward import ForwardResult, LayerProbe
from whyzero.probes.inputs import InputStats
from whyzero.probes.summary import ValueSummary
from whyzero.proofs import standardize


def summary(values: np.ndarray) -> ValueSummary:
    """A ValueSummary of a literal (samples, units) array, as the probe would merge it."""
    v = ValueSummary()
    v.n, v.n_samples = values.size, len(values)
    v.zero, v.sum, v.sumsq = int((values == 0).sum()), float(values.sum()), float((values**2).sum())
    v.min, v.max = float(values.min()), float(values.max())
    v.unit_max = values.max(0)
    v.sample_sum, v.sample_sumsq = values.sum(0), (values**2).sum(0)
    return v


def probe(name, activation="relu", values=None, grad=0.0, weight=1.0, nonzero=100, n=100):
    p = LayerProbe(name, "Dense", activation, values if values is not None else summary(np.ones((8, 4))))
    p.grad_sumsq, p.weight_norm, p.grad_nonzero, p.n_kernel = grad**2, weight, nonzero, n
    return p


def context(layers, optimizer=None, outputs=None, batch=None, labels=None, kind="binary", train=None):
    batch = np.random.default_rng(0).normal(size=(16, 4)) if batch is None else batch
    outputs = np.random.default_rng(1).random((16, 1)) if outputs is None else outputs
    forward = ForwardResult(layers, [], outputs, 0.5, True)
    return Context(None, batch, outputs, Task(kind, 1 if kind == "regression" else 2, "sigmoid", True),
                   InputStats.of(batch), labels=labels, forward=forward, optimizer=optimizer,
                   gradient_labels="labels", train_stats=train)


def test_adam_step_is_measured_only_where_the_gradient_is_not_zero():
    assert update_ratio({"name": "Adam", "learning_rate": 1e-3}, 0.0, 0, 2.0) is None
    assert update_ratio({"name": "Adam", "learning_rate": 1e-3}, 5.0, 400, 2.0) == 1e-3 * 20 / 2.0
    assert update_ratio({"name": "SGD", "learning_rate": 0.1}, 5.0, 400, 2.0) == 0.1 * 5.0 / 2.0


def test_zero_gradients_are_never_a_low_learning_rate():
    layers = [probe("dense1", grad=0.0, nonzero=0), probe("dense2", grad=0.0, nonzero=0)]
    assert learning_rate(context(layers, {"name": "SGD", "learning_rate": 1e-3})) == []
    tiny = [probe("dense1", grad=1.0), probe("dense2", grad=1.0)]
    found = learning_rate(context(tiny, {"name": "SGD", "learning_rate": 1e-9}))
    assert found[0].cause == "training.learning_rate_low" and found[0].evidence["median_update_ratio"] == 1e-9


def test_an_adam_rate_of_one_is_too_high_even_when_no_step_can_be_measured():
    layers = [probe("dense1", grad=0.0, nonzero=0)]
    found = learning_rate(context(layers, {"name": "Adam", "learning_rate": 1.0}))
    assert found[0].cause == "training.learning_rate_high" and found[0].severity == "critical"
    assert learning_rate(context(layers, {"name": "Adam", "learning_rate": 1e-3})) == []


def test_exploding_is_growth_from_layer_to_layer_not_one_large_ratio():
    # a healthy SGD regression MLP: gradients 300x the weights, no growth across layers
    flat = [probe(f"d{i}", values=summary(np.ones((8, 4))), grad=300.0, weight=1.0) for i in range(4)]
    assert vanishing_exploding(context(flat)) == []
    growing = [probe(f"d{i}", values=summary(np.full((8, 4), 10.0**i)), grad=1.0) for i in range(5)]
    found = vanishing_exploding(context(growing))
    assert found[0].cause == "gradient.exploding"
    assert found[0].evidence["activation_growth_per_layer"] >= 9.9


def weights_ctx(rows):
    ctx = context([])
    ctx.memory["weights"] = rows
    return ctx


def test_one_unit_layers_and_small_kernels_are_not_constant():
    one = {"layer": "score", "std": 0.0, "mean": 0.7, "values": 1, "ratio": 1.0}
    small = {"layer": "head", "std": 0.0, "mean": 0.3, "values": 8, "ratio": 1.0}
    assert weight_init(weights_ctx([one, small])) == []
    zero = {"layer": "dense1", "std": 0.0, "mean": 0.0, "values": 512, "ratio": 0.0}
    found = weight_init(weights_ctx([zero]))
    assert found[0].severity == "critical" and "all zero" in found[0].title


def test_targets_in_the_hundreds_with_a_flat_output_are_a_target_scale_problem():
    y = np.linspace(25, 346, 32)
    flat = context([], outputs=np.full((32, 1), 3.0) + np.linspace(0, 1, 32)[:, None], labels=y, kind="regression")
    found = target_scale(flat)
    assert found[0].cause == "labels.target_scale" and found[0].evidence["target_mean"] > 100
    fitted = context([], outputs=(y + np.random.default_rng(0).normal(0, 10, 32))[:, None], labels=y,
                     kind="regression")
    assert target_scale(fitted) == []
    scaled = context([], outputs=np.zeros((32, 1)), labels=(y - y.mean()) / y.std(), kind="regression")
    assert target_scale(scaled) == []


def test_unnormalized_features_that_kill_the_first_layer_are_named():
    rng = np.random.default_rng(0)
    batch = 67.0 + rng.normal(0, 3, size=(32, 4))
    dead = summary(np.zeros((32, 8)))
    found = unnormalized(context([probe("dense1", values=dead), probe("output", "sigmoid")], batch=batch,
                                 outputs=np.full((32, 1), 0.4)))
    assert found[0].cause == "input.unnormalized" and found[0].severity == "critical"
    assert found[0].evidence["median_mean_to_std"] > 15
    alive = summary(rng.random((32, 8)))
    standardized = (batch - batch.mean(0)) / batch.std(0)
    assert unnormalized(context([probe("dense1", values=alive), probe("output", "sigmoid")],
                                batch=standardized)) == []


def test_standardize_centres_every_feature():
    x = np.array([[1.0, 100.0], [3.0, 300.0]])
    np.testing.assert_allclose(standardize(x), [[-1, -1], [1, 1]])
