"""Checks on literal measurements: each fires on the fault and stays quiet on the healthy twin."""

import numpy as np
import pytest

from whyzero.checks.gradients import learning_rate, update_ratio, vanishing_exploding, zero_gradient
from whyzero.checks.inputs import unnormalized
from whyzero.checks.labels import target_scale
from whyzero.checks.model import weight_init
from whyzero.measurements import (
    GradientRow,
    LayerRecord,
    LayerValues,
    Measurements,
    ModelMemory,
    NormalizationMemory,
    Task,
    unique_counts,
)
from whyzero.probes.inputs import InputStats
from whyzero.targets import label_ids
from whyzero.transforms import standardize


def values(array: np.ndarray) -> LayerValues:
    """A layer's values as the probes would record them for a literal (samples, units) array."""
    per_unit_std = array.std(0)
    rms = float(np.sqrt(np.mean(array**2)))
    return LayerValues(n=array.size, zero=int((array == 0).sum()), mean=float(array.mean()), std=float(array.std()),
                       min=float(array.min()), max=float(array.max()), rms=rms,
                       never_active_share=float(np.mean(array.max(0) <= 0)),
                       relative_spread=float(np.sqrt(np.mean(per_unit_std**2)) / rms) if rms else 0.0,
                       units=array.shape[1])


def layer(name, activation="relu", array=None):
    return LayerRecord(name, "Dense", activation, values(np.ones((8, 4)) if array is None else array))


def gradient(name, grad=0.0, weight=1.0, nonzero=100, rms=1.0):
    return GradientRow(name, grad, weight, 0, nonzero if grad else 0, 100, rms)


def measured(layers=(), gradients=(), optimizer=None, outputs=None, batch=None, labels=None, kind="binary"):
    batch = np.random.default_rng(0).normal(size=(16, 4)) if batch is None else batch
    outputs = np.random.default_rng(1).random((16, 1)) if outputs is None else outputs
    return Measurements(Task(kind, 1 if kind == "regression" else 2, "sigmoid", True), list(batch.shape),
                        str(batch.dtype), False, InputStats.of(batch), layers=list(layers), gradients=list(gradients),
                        gradient_labels="labels", optimizer=optimizer, outputs=outputs,
                        output_shape=list(outputs.shape), labels=labels)


def test_adam_step_is_measured_only_where_the_gradient_is_not_zero():
    assert update_ratio({"name": "Adam", "learning_rate": 1e-3}, gradient("d", 0.0, 2.0, 0)) is None
    assert update_ratio({"name": "Adam", "learning_rate": 1e-3}, gradient("d", 5.0, 2.0, 400)) == 1e-3 * 20 / 2.0
    assert update_ratio({"name": "SGD", "learning_rate": 0.1}, gradient("d", 5.0, 2.0, 400)) == 0.1 * 5.0 / 2.0


def test_zero_gradients_are_never_a_low_learning_rate():
    sgd = {"name": "SGD", "learning_rate": 1e-3}
    zero = [gradient("dense1"), gradient("dense2")]
    assert learning_rate(measured(gradients=zero, optimizer=sgd)) == []
    tiny_lr = {"name": "SGD", "learning_rate": 1e-9}
    tiny = [gradient("dense1", 1.0), gradient("dense2", 1.0)]
    found = learning_rate(measured(gradients=tiny, optimizer=tiny_lr))
    assert found[0].cause == "training.learning_rate_low" and found[0].evidence["median_update_ratio"] == 1e-9


def test_an_adam_rate_of_one_is_too_high_even_when_no_step_can_be_measured():
    zero = [gradient("dense1")]
    found = learning_rate(measured(gradients=zero, optimizer={"name": "Adam", "learning_rate": 1.0}))
    assert found[0].cause == "training.learning_rate_high" and found[0].severity == "critical"
    assert learning_rate(measured(gradients=zero, optimizer={"name": "Adam", "learning_rate": 1e-3})) == []


def test_an_adam_rate_that_blew_the_weights_up_is_too_high_though_the_measured_step_looks_sane():
    """Adam at lr 5 grew an LSTM's kernels to std ~27: a step of ~5 against weights that large measures like a
    normal update ratio, or a low one; the configured rate is what names the cause."""
    for optimizer in ({"name": "Adam", "learning_rate": 5.0}, {"name": "RMSprop", "learning_rate": 2.0}):
        grown = [gradient("lstm", 1e-6, weight=27.0 * 60, nonzero=3600),
                 gradient("dense", 1e-3, weight=25.0 * 18, nonzero=320)]
        found = learning_rate(measured(gradients=grown, optimizer=optimizer))
        assert [(f.cause, f.severity) for f in found] == [("training.learning_rate_high", "critical")]
        assert "measured against weights" in found[0].evidence["measured"]
    sane = {"name": "Adam", "learning_rate": 1e-3}
    assert learning_rate(measured(gradients=[gradient("dense", 1.0, weight=30.0, nonzero=1000)],
                                  optimizer=sane)) == []


def test_exploding_is_growth_from_layer_to_layer_not_one_large_ratio():
    # a healthy SGD regression MLP: gradients 300x the weights, no growth across layers
    flat = [gradient(f"d{i}", grad=300.0, weight=1.0) for i in range(4)]
    assert vanishing_exploding(measured(gradients=flat)) == []
    growing = [gradient(f"d{i}", grad=1.0, rms=10.0**i) for i in range(5)]
    found = vanishing_exploding(measured(gradients=growing))
    assert found[0].cause == "gradient.exploding"
    assert found[0].evidence["activation_growth_per_layer"] >= 9.9


def weights_ctx(rows):
    m = measured()
    m.memory.weights = rows
    return m


def test_one_unit_layers_and_small_kernels_are_not_constant():
    one = {"layer": "score", "std": 0.0, "mean": 0.7, "values": 1, "ratio": 1.0}
    small = {"layer": "head", "std": 0.0, "mean": 0.3, "values": 8, "ratio": 1.0}
    assert weight_init(weights_ctx([one, small])) == []
    zero = {"layer": "dense1", "std": 0.0, "mean": 0.0, "values": 512, "ratio": 0.0}
    found = weight_init(weights_ctx([zero]))
    assert found[0].severity == "critical" and "all zero" in found[0].title


def test_targets_in_the_hundreds_with_a_flat_output_are_a_target_scale_problem():
    y = np.linspace(25, 346, 32)
    flat = measured(outputs=np.full((32, 1), 3.0) + np.linspace(0, 1, 32)[:, None], labels=y, kind="regression")
    found = target_scale(flat)
    assert found[0].cause == "labels.target_scale" and found[0].evidence["target_mean"] > 100
    fitted = measured(outputs=(y + np.random.default_rng(0).normal(0, 10, 32))[:, None], labels=y, kind="regression")
    assert target_scale(fitted) == []
    scaled = measured(outputs=np.zeros((32, 1)), labels=(y - y.mean()) / y.std(), kind="regression")
    assert target_scale(scaled) == []


def test_unnormalized_features_that_kill_the_first_layer_are_named():
    rng = np.random.default_rng(0)
    batch = 67.0 + rng.normal(0, 3, size=(32, 4))
    dead = np.zeros((32, 8))
    found = unnormalized(measured([layer("dense1", array=dead), layer("output", "sigmoid")], batch=batch,
                                  outputs=np.full((32, 1), 0.4)))
    assert found[0].cause == "input.unnormalized" and found[0].severity == "critical"
    assert found[0].evidence["median_mean_to_std"] > 15
    alive = rng.random((32, 8))
    standardized = (batch - batch.mean(0)) / batch.std(0)
    assert unnormalized(measured([layer("dense1", array=alive), layer("output", "sigmoid")],
                                 batch=standardized)) == []


def test_standardize_centres_every_feature():
    x = np.array([[1.0, 100.0], [3.0, 300.0]])
    np.testing.assert_allclose(standardize(x), [[-1, -1], [1, 1]])


# -- every other check: one literal that fires, one that stays quiet ------------------------------------------
from whyzero.checks import activations, inputs, labels, model, outputs  # noqa: E402

RNG = np.random.default_rng(3)
SPREAD = RNG.random((16, 1))
BINARY = (SPREAD[:, 0] > 0.5).astype(int)


def with_(m, **changes):
    for key, value in changes.items():
        setattr(m, key, value)
    return m


def case(kind="binary", outputs_=None, labels_=None, ids=None, layers=(), activation="sigmoid", loss=None,
         masks=None, batch=None, memory=None, model_layers=(), final_layer="output"):
    m = measured(layers=layers, outputs=SPREAD if outputs_ is None else outputs_, labels=labels_, kind=kind,
                 batch=batch)
    m.task = Task(kind, 2 if kind != "regression" else 1, activation, activation in ("sigmoid", "softmax"))
    return with_(m, label_ids=ids, loss=loss, masks=masks, memory=ModelMemory(**(memory or {})),
                 model_layers=list(model_layers), final_layer=final_layer)


LITERALS = {
    "dead_relu": (activations.dead_relu,
                  lambda: case(layers=[layer("d1", array=np.zeros((16, 8))), layer("out", "sigmoid")]),
                  lambda: case(layers=[layer("d1", array=RNG.random((16, 8))), layer("out", "sigmoid")])),
    "saturation": (activations.saturation,
                   lambda: case(layers=[with_(layer("d1", "sigmoid"), values=LayerValues(n=100, flat=95)),
                                        layer("out", "sigmoid")]),
                   lambda: case(layers=[with_(layer("d1", "sigmoid"), values=LayerValues(n=100, flat=5)),
                                        layer("out", "sigmoid")])),
    "collapse": (activations.collapse,
                 lambda: case(layers=[layer("d1", array=np.ones((16, 8))), layer("out", array=np.ones((16, 1)))]),
                 lambda: case(layers=[layer("d1", array=RNG.random((16, 8))), layer("out", array=SPREAD)])),
    "constant": (outputs.constant, lambda: case(outputs_=np.full((16, 1), 0.3)), lambda: case()),
    "saturated": (outputs.saturated, lambda: case(outputs_=np.ones((16, 1))), lambda: case()),
    "majority_class": (outputs.majority_class, lambda: case(outputs_=np.full((16, 1), 0.9), ids=BINARY * 0 + (
        np.arange(16) % 2)), lambda: case(ids=BINARY)),
    "threshold": (outputs.threshold, lambda: case(outputs_=SPREAD * 0.1, ids=BINARY), lambda: case(ids=BINARY)),
    "shape_mismatch": (outputs.shape_mismatch,
                       lambda: case(kind="multiclass", outputs_=RNG.random((16, 1000)), labels_=BINARY,
                                    activation="softmax"),
                       lambda: case(labels_=BINARY)),
    "imbalance": (labels.imbalance, lambda: case(ids=(np.arange(100) < 2).astype(int)),
                  lambda: case(ids=np.arange(100) % 2)),
    "encoding": (labels.encoding,
                 lambda: case(kind="segmentation", outputs_=RNG.random((2, 4, 4, 1)),
                              masks=np.full((2, 4, 4), 255)),
                 lambda: case(kind="segmentation", outputs_=RNG.random((2, 4, 4, 1)), masks=np.ones((2, 4, 4)))),
    "output_activation": (model.output_activation,
                          lambda: case(activation="linear", loss={"name": "binary_crossentropy", "from_logits": False,
                                                                  "known": True, "raw": "bce"}),
                          lambda: case(loss={"name": "binary_crossentropy", "from_logits": False, "known": True,
                                             "raw": "bce"})),
    "stale_head": (model.stale_head,
                   lambda: case(model_layers=[{"name": "predictions", "activation": "softmax", "units": 1000},
                                              {"name": "binary", "activation": "sigmoid", "units": 1}]),
                   lambda: case(model_layers=[{"name": "d", "activation": "relu", "units": 8},
                                              {"name": "out", "activation": "softmax", "units": 1000}])),
    "feature_scale_disparity": (inputs.feature_scale_disparity,
                                lambda: case(batch=RNG.random((16, 3)) * np.array([1e-3, 1.0, 1e3])),
                                lambda: case(batch=RNG.random((16, 3)))),
    "invalid_values": (inputs.invalid_values, lambda: case(batch=np.zeros((16, 3))), lambda: case()),
}




def image_case(batch, train=None, **changes):
    m = case(batch=batch)
    m.is_image = True
    m.train_stats = None if train is None else InputStats.of(train)
    return with_(m, **changes)


PIXELS = RNG.random((8, 4, 4, 3)) * np.array([0.2, 0.5, 0.9])  # distinct channel means
NORMALIZATION = ModelMemory(normalization=NormalizationMemory("norm", [120.0] * 3, [3600.0] * 3))
LOSS = {"name": "sparse_categorical_crossentropy", "from_logits": False, "known": True, "raw": "scce"}

def pinned(zero: int, one: int) -> LayerRecord:
    """A Lambda layer whose 100 outputs hold ``zero`` exact zeros and ``one`` exact ones."""
    return LayerRecord("lam", "Lambda", "lambda", LayerValues(n=100, zero=zero, one=one))


MORE_LITERALS = {
    "vanishing": (lambda m: [f for f in vanishing_exploding(m) if f.cause == "gradient.vanishing"],
                  lambda: measured(gradients=[gradient("d1", 1e-9), gradient("d2", 1e-3), gradient("d3", 1.0)]),
                  lambda: measured(gradients=[gradient("d1", 0.5), gradient("d2", 0.7), gradient("d3", 1.0)])),
    "zero_gradient": (zero_gradient,
                      lambda: measured(gradients=[gradient("d1", 0.0), gradient("d2", 0.0)]),
                      lambda: measured(gradients=[gradient("d1", 0.1), gradient("d2", 0.2)])),
    "range_mismatch": (inputs.range_mismatch, lambda: image_case(PIXELS * 255, train=PIXELS),
                       lambda: image_case(PIXELS, train=PIXELS)),
    "dtype_mismatch": (inputs.dtype_mismatch,
                       lambda: image_case(np.round(PIXELS * 255).astype(np.uint8), train=PIXELS),
                       lambda: image_case(PIXELS, train=PIXELS)),
    "channel_order": (inputs.channel_order, lambda: image_case(PIXELS[..., ::-1], train=PIXELS),
                      lambda: image_case(PIXELS, train=PIXELS)),
    "double_normalization": (inputs.double_normalization,
                             lambda: with_(case(batch=RNG.normal(size=(16, 3))), memory=NORMALIZATION),
                             lambda: with_(case(batch=120 + 60 * RNG.normal(size=(16, 3))), memory=NORMALIZATION)),
    "loss_mismatch": (model.loss_mismatch, lambda: case(loss=LOSS), lambda: case(
        kind="multiclass", outputs_=RNG.random((16, 3)), activation="softmax", loss=LOSS)),
    "unstable_lambda": (model.unstable_lambda, lambda: case(layers=[pinned(40, 50), layer("out", "sigmoid")]),
                        lambda: case(layers=[pinned(1, 1), layer("out", "sigmoid")])),
    "mask_mismatch": (labels.mask_mismatch,
                      lambda: with_(case(kind="segmentation", outputs_=RNG.random((2, 4, 4, 1)),
                                         masks=np.ones((2, 8, 8)), batch=RNG.random((2, 8, 8, 1))),
                                    output_shape=[2, 4, 4, 1]),
                      lambda: with_(case(kind="segmentation", outputs_=RNG.random((2, 8, 8, 1)),
                                         masks=np.ones((2, 8, 8)), batch=RNG.random((2, 8, 8, 1))),
                                    output_shape=[2, 8, 8, 1])),
}


@pytest.mark.parametrize("name", sorted({**LITERALS, **MORE_LITERALS}))
def test_each_check_fires_on_its_fault_and_not_on_the_healthy_twin(name):
    fn, faulty, healthy = {**LITERALS, **MORE_LITERALS}[name]
    fired = fn(faulty())
    assert isinstance(fired, list) and fired and fired[0].severity in ("critical", "warning"), fired
    assert fn(healthy()) == []


@pytest.mark.parametrize("loss_name, labels_", [("categorical_crossentropy", np.arange(16) % 3),
                                                ("sparse_categorical_crossentropy", np.eye(3)[np.arange(16) % 3])])
def test_labels_in_the_other_encoding_than_the_loss_are_a_note_not_an_alarm(loss_name, labels_):
    """Keras refuses to train on labels its loss cannot read, so class ids given for a one-hot loss (or the
    reverse) are about the labels given to whyzero, not the model's fault: a healthy classifier stays clean."""
    m = with_(case(kind="multiclass", outputs_=RNG.random((16, 3)), labels_=labels_, activation="softmax",
                   loss={**LOSS, "name": loss_name}), output_shape=[16, 3])
    found = model.loss_mismatch(m)
    assert [(f.cause, f.severity) for f in found] == [("model.loss_mismatch", "info")]
    assert "labels given" in found[0].title


def test_binary_cross_entropy_on_a_softmax_alarms_only_for_a_model_that_did_not_learn():
    """Binary cross-entropy on a 2-unit softmax (one-hot labels) is the categorical loss exactly; on 10 units it
    still trains the true class up.  A model that gets its labels right hears a note (about Keras's misleading
    'accuracy'); one that predicts a constant hears the loss named as critical."""
    bce = {**LOSS, "name": "binary_crossentropy"}
    ids = np.arange(16) % 2
    two = with_(case(kind="multiclass", outputs_=np.eye(2)[ids] * 0.8 + 0.1, labels_=np.eye(2)[ids], ids=ids,
                     activation="softmax", loss=bce), output_shape=[16, 2])
    found = model.loss_mismatch(two)
    assert [(f.cause, f.severity) for f in found] == [("model.loss_mismatch", "info")]
    assert "the same loss as categorical cross-entropy" in found[0].title
    ids = np.arange(16) % 10
    right = with_(case(kind="multiclass", outputs_=np.eye(10)[ids] * 0.9 + 0.01, labels_=ids, ids=ids,
                       activation="softmax", loss=bce), output_shape=[16, 10])
    found = model.loss_mismatch(right)
    assert [(f.cause, f.severity) for f in found] == [("model.loss_mismatch", "info")]
    assert found[0].evidence["label_accuracy"] == 1.0
    flat = with_(right, outputs=np.full((16, 10), 0.1) + np.eye(10)[np.zeros(16, int)] * 0.01)
    found = model.loss_mismatch(flat)
    assert [(f.cause, f.severity) for f in found] == [("model.loss_mismatch", "critical")]


def test_a_lambda_is_unstable_only_when_it_pins_values_itself_squashing_into_0_1():
    """A custom sigmoid that pins 90% of its outputs at exactly 0 or 1 is critical.  A ReLU written as a Lambda
    (values above 1) clamps at 0 by design; a Lambda dividing pixels by 255 passes the black ones on as 0; a clip
    to 0..1 in a model that gets its labels right is a hard sigmoid: none of them is an alarm."""
    def custom(zero, one, n=100, low=0.0, high=1.0):
        return LayerRecord("lam", "Lambda", "lambda", LayerValues(n=n, zero=zero, one=one, min=low, max=high))

    def before(zero):
        return LayerRecord("dense", "Dense", None, LayerValues(n=100, zero=zero, min=-3.0, max=3.0))

    sigmoid = case(layers=[before(0), custom(40, 50)])
    assert [(f.cause, f.severity) for f in model.unstable_lambda(sigmoid)] == [("model.unstable_lambda", "critical")]
    relu = case(layers=[before(0), custom(50, 0, high=7.5)])
    assert model.unstable_lambda(relu) == []
    rescale = case(layers=[before(60), custom(60, 5)])  # the zeros it receives, a few exact 1s
    assert model.unstable_lambda(rescale) == []
    pixels = np.where(RNG.random((16, 64)) < 0.5, 0.0, RNG.integers(1, 256, (16, 64)))
    first = with_(case(layers=[custom(520, 3, n=16 * 64), layer("out", "sigmoid")]), input_stats=InputStats.of(pixels))
    assert model.unstable_lambda(first) == []
    lit = with_(case(layers=[custom(520, 3, n=16 * 64), layer("out", "sigmoid")]),
                input_stats=InputStats.of(np.where(pixels == 0, 7.0, pixels)))  # nothing 0 comes in
    assert [f.severity for f in model.unstable_lambda(lit)] == ["critical"]
    ids = np.arange(16) % 2
    clipped = case(layers=[before(0), custom(30, 20), layer("out", "sigmoid")],
                   outputs_=np.where(ids, 0.9, 0.1)[:, None], labels_=ids, ids=ids)
    found = model.unstable_lambda(clipped)
    assert [(f.cause, f.severity) for f in found] == [("model.unstable_lambda", "info")]
    assert "still gets its labels right" in found[0].title
    # the same pins on the output: right or not, a wrong answer's loss is infinite
    pinned_out = case(layers=[before(0), custom(40, 50)], outputs_=ids[:, None].astype(float), labels_=ids, ids=ids)
    assert [f.severity for f in model.unstable_lambda(pinned_out)] == ["critical"]


def test_a_softmax_applied_twice_is_the_output_activation_not_a_stale_head():
    """Dense(10, activation='softmax') then Softmax(): no new head comes after the first softmax, so it is not
    a stale pre-trained head; squashing twice pulls every probability toward 1/10."""
    dense = {"name": "probs", "type": "Dense", "activation": "softmax", "units": 10, "params": 650}
    again = {"name": "softmax", "type": "Softmax", "activation": "softmax", "units": None, "params": 0}
    twice = case(kind="multiclass", outputs_=0.1 + 0.01 * RNG.random((16, 10)), activation="softmax",
                 model_layers=[{"name": "hidden", "type": "Dense", "activation": "relu", "units": 64,
                                "params": 4160}, dense, again], final_layer="softmax")
    found = model.output_activation(twice)
    assert [(f.cause, f.severity) for f in found] == [("model.output_activation", "warning")]
    assert "'probs' applies softmax and 'softmax' applies softmax again" in found[0].title
    assert model.stale_head(twice) == []
    once = with_(twice, model_layers=twice.model_layers[:2], final_layer="probs")
    assert model.output_activation(once) == [] and model.stale_head(once) == []
    new_head = {"name": "new_head", "type": "Dense", "activation": "sigmoid", "units": 1, "params": 11}
    stale = with_(twice, model_layers=twice.model_layers[:2] + [new_head], final_layer="new_head")
    assert [f.cause for f in model.stale_head(stale)] == ["model.stale_head"]


@pytest.mark.parametrize("act", ["linear", "relu"])
def test_a_linear_or_relu_output_under_categorical_cross_entropy_is_the_output_activation(act):
    """Dense(10) (or Dense(10, 'relu')) compiled with categorical cross-entropy, not from logits: the loss
    normalizes raw scores as if they were probabilities (and a dead ReLU output divides by zero)."""
    for name in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        wrong = case(kind="multiclass", outputs_=RNG.random((16, 10)), activation=act, loss={**LOSS, "name": name})
        found = model.output_activation(with_(wrong, output_shape=[16, 10]))
        assert [(f.cause, f.severity) for f in found] == [("model.output_activation", "critical")]
        assert f"The final layer is {act} but {name} expects probabilities" == found[0].title
    logits = case(kind="multiclass", outputs_=RNG.random((16, 10)), activation=act,
                  loss={**LOSS, "from_logits": True})
    assert model.output_activation(with_(logits, output_shape=[16, 10])) == []
    softmax = case(kind="multiclass", outputs_=RNG.random((16, 10)), activation="softmax", loss=LOSS)
    assert model.output_activation(with_(softmax, output_shape=[16, 10])) == []


def test_a_relu_output_for_targets_that_are_often_negative_is_the_output_activation():
    """Standardized targets (half of them negative) through Dense(1, activation='relu'): the output never goes
    below 0, and once its units die every prediction is 0.  Counts or prices (never negative) are fine."""
    mse = {**LOSS, "name": "mse"}
    targets = np.linspace(-3, 1, 32)
    dead = with_(case(kind="regression", outputs_=np.zeros((32, 1)), labels_=targets, activation="relu", loss=mse),
                 output_shape=[32, 1])
    found = model.output_activation(dead)
    assert [(f.cause, f.severity) for f in found] == [("model.output_activation", "critical")]
    assert found[0].title == "A ReLU output (never below 0) regresses targets of which 75% are negative: " \
                             "every prediction is 0"
    counts = with_(case(kind="regression", outputs_=RNG.random((32, 1)) * 5, labels_=np.abs(targets) * 5,
                        activation="relu", loss=mse), output_shape=[32, 1])
    assert model.output_activation(counts) == []


def test_sparse_features_on_one_range_are_not_disparate_but_far_apart_ranges_are():
    """Flattened digit pixels: an edge pixel lit once in 256 samples has a tiny std (0.004 against 0.45) on the
    same 0..1 range as the rest; features whose ranges differ by 1e3 as well are still disparate."""
    from whyzero.checks.inputs import feature_scale_disparity

    rng = np.random.default_rng(0)
    pixels = rng.random((256, 6))
    pixels[:, 0] = 0.0
    pixels[7, 0] = 1 / 16  # lit once
    pixels[:, 1] = 0.25  # constant, not zero: its float std is round-off, not a scale
    assert feature_scale_disparity(measured(batch=pixels)) == []
    mixed = pixels.copy()
    mixed[:, 2] *= 1e3
    found = feature_scale_disparity(measured(batch=mixed))
    assert found[0].cause == "input.feature_scale_disparity"
    # the smaller of the two ratios: ranges 1/16 against ~1e3, where the stds are 7e4 apart
    assert found[0].evidence["range_ratio"] == pytest.approx(16 * np.ptp(mixed[:, 2]))
    assert found[0].evidence["std_ratio"] > found[0].evidence["range_ratio"]
    assert found[0].evidence["largest_feature"] == 2
    # a model whose first layer standardizes each feature (BatchNormalization) takes them as they are; one that
    # normalizes each sample across its features (LayerNormalization) does not
    standardized = measured(batch=mixed, layers=[LayerRecord("bn", "BatchNormalization", None, values(mixed[:, :4])),
                                                 layer("out", "sigmoid")])
    assert feature_scale_disparity(standardized) == []
    per_sample = measured(batch=mixed, layers=[LayerRecord("ln", "LayerNormalization", None, values(mixed[:, :4])),
                                               layer("out", "sigmoid")])
    assert feature_scale_disparity(per_sample)[0].cause == "input.feature_scale_disparity"


def test_imbalanced_labels_are_a_note_when_the_model_finds_the_rare_class_and_a_warning_when_it_does_not():
    from whyzero.checks.labels import imbalance

    ids = (np.arange(200) < 14).astype(int)  # 7% positive
    finds = (ids * 0.9 + 0.05).reshape(-1, 1)  # every positive scored 0.95, every negative 0.05
    m = with_(measured(outputs=finds), label_ids=ids)
    note = imbalance(m)
    assert [(f.cause, f.severity) for f in note] == [("labels.imbalance", "info")]
    assert note[0].evidence["minority_recall"] == 1.0
    misses = with_(measured(outputs=np.full((200, 1), 0.05)), label_ids=ids)
    warned = imbalance(misses)
    assert [(f.cause, f.severity) for f in warned] == [("labels.imbalance", "warning")]
    assert warned[0].evidence["minority_recall"] == 0.0


def test_a_regression_onto_targets_in_the_hundred_thousands_may_have_large_kernels():
    """Kernels 50x the Glorot scale are a warning on a model that explains little, a note on one that fits its
    targets (R² 0.99): a regression onto house prices needs them that large."""
    rng = np.random.default_rng(0)
    targets = 2e5 + 5e4 * rng.normal(size=(64, 1))
    row = {"layer": "out", "type": "Dense", "std": 50.0, "mean": 0.0, "values": 320, "nonfinite": 0,
           "expected_low": 0.3, "expected_high": 1.0, "ratio": 50.0, "fan_in": 32, "fan_out": 1}
    fits = with_(measured(outputs=targets + 5e3 * rng.normal(size=(64, 1)), labels=targets, kind="regression"),
                 memory=ModelMemory(weights=[row]))
    assert fits.label_r2() > 0.9
    assert [(f.cause, f.severity) for f in weight_init(fits)] == [("model.weight_init", "info")]
    flat = with_(measured(outputs=np.full((64, 1), 2e5), labels=targets, kind="regression"),
                 memory=ModelMemory(weights=[row]))
    assert [(f.cause, f.severity) for f in weight_init(flat)] == [("model.weight_init", "warning")]


def test_one_sided_scores_are_a_threshold_fault_only_when_the_rare_class_goes_unpredicted():
    """7% positives: a model scoring 5% of the samples above 0.5 finds most of them (95% on one side is the
    labels' own balance); one that scores none of them above 0.5, though they rank first, has a shifted
    threshold."""
    from whyzero.checks.outputs import threshold

    ids = (np.arange(200) < 14).astype(int)
    ranked = np.where(ids == 1, 0.3, 0.02)
    ranked[:10] = 0.9  # 10 of the 14 positives above 0.5: 5% of the samples
    m = case(outputs_=ranked.reshape(-1, 1), ids=ids)
    assert threshold(m) == []
    shifted = case(outputs_=np.where(ids == 1, 0.3, 0.02).reshape(-1, 1), ids=ids)
    found = threshold(shifted)
    assert found[0].cause == "output.threshold" and found[0].evidence["share_above_0_5"] == 0.0


def test_a_batch_of_one_class_is_a_note_unless_the_model_says_that_class_for_all_of_it():
    """A batch picked from class 3 alone holds no evidence of the training labels' balance when the model still
    predicts other classes for part of it; when it predicts class 3 for all of it, labels that are all one class
    (a label-loading bug) may be what it learned from: a warning, as for 97% of one class."""
    from whyzero.checks.labels import imbalance

    threes = np.full(100, 3)
    guesses = np.eye(10)[np.where(np.arange(100) < 70, 3, 5)] * 0.8 + 0.02  # class 3 for 70 of them
    m = with_(measured(outputs=guesses), label_ids=threes)
    m.task = Task("multiclass", 10, "softmax", True)
    note = imbalance(m)
    assert [(f.cause, f.severity) for f in note] == [("labels.imbalance", "info")]
    assert note[0].evidence["single_class"] == 3 and note[0].evidence["predicted_share"] == 0.7
    m.outputs = np.eye(10)[threes] * 0.8 + 0.02
    agreed = imbalance(m)
    assert [(f.cause, f.severity) for f in agreed] == [("labels.imbalance", "warning")]
    assert "that is all it could learn" in agreed[0].title
    mostly = threes.copy()
    mostly[:3] = 0
    m.label_ids = mostly
    assert [(f.cause, f.severity) for f in imbalance(m)] == [("labels.imbalance", "warning")]


def test_minus_one_plus_one_labels_are_an_encoding_for_a_hinge_loss_or_a_tanh_output_only():
    """-1/+1 targets are how a tanh output with a hinge loss is trained (read as classes 0 and 1, decided at 0);
    the same labels into a sigmoid trained with cross-entropy are a fault."""
    from whyzero.checks.labels import encoding

    signed = np.where(BINARY == 1, 1.0, -1.0)
    scores = np.where(BINARY == 1, 0.8, -0.7).reshape(-1, 1)  # a tanh output, right on every sample
    hinge = case(outputs_=scores, labels_=signed, activation="tanh",
                 loss={"name": "hinge", "raw": "hinge", "known": False, "from_logits": False})
    hinge.label_ids = label_ids(hinge.task, signed, None)
    assert encoding(hinge) == []
    assert hinge.label_ids.tolist() == BINARY.tolist() and hinge.label_accuracy() == 1.0
    bce = case(labels_=signed, loss={"name": "binary_crossentropy", "raw": "binary_crossentropy", "known": True,
                                     "from_logits": False})
    assert [(f.cause, f.severity) for f in encoding(bce)] == [("labels.encoding", "critical")]


def test_a_tanh_unit_decides_halfway_between_its_targets():
    from whyzero.measurements import decision_cut

    tanh = Task("binary", 2, "tanh", False)
    assert decision_cut(tanh, np.array([-1.0, 1.0, 1.0])) == 0.0 and decision_cut(tanh, None) == 0.0
    assert decision_cut(tanh, np.array([0, 1, 1])) == 0.5  # trained on 0/1: halfway is 0.5
    assert decision_cut(Task("binary", 2, "sigmoid", True), np.array([-1.0, 1.0])) == 0.5


@pytest.mark.parametrize("loss_name, raw", [("poisson", "poisson"), ("mape", "mean_absolute_percentage_error")])
def test_counts_under_a_poisson_or_percentage_loss_are_a_regression_not_class_ids(loss_name, raw):
    """One exponential unit trained with the Poisson loss on counts 0..5: the small whole-number targets are counts,
    not class ids (read as classes they were 'labels outside the 2 classes', critical)."""
    from whyzero.model_info import _LOSS_ALIASES
    from whyzero.targets import infer_task, loss_for_gradients

    counts = np.array([0, 1, 2, 3, 4, 5, 1, 0], np.float32)
    loss = {"name": _LOSS_ALIASES[raw], "from_logits": False, "known": True, "raw": raw}
    task = infer_task(RNG.random((8, 1)) * 3, "exponential", loss, counts)
    assert task.kind == "regression" and loss["name"] == loss_name
    fn, origin = loss_for_gradients(task, loss)
    assert float(fn(counts[:, None], counts[:, None] + 1.0)) > 0 and loss_name in origin
    assert label_ids(task, counts, None) is None


# -- issue 26: established before blamed ---------------------------------------------------------------------------
def kernel(layer, std, ratio, **extra):
    """A weight row as ``model_info.weight_table`` records it (an initializer's draw unless said)."""
    return {"layer": layer, "type": "Dense", "std": std, "mean": 0.0, "values": 512, "nonfinite": 0,
            "expected_low": 0.1, "expected_high": 0.2, "ratio": ratio, "fan_in": 32, "fan_out": 16, "l1": 0.0,
            "l2": 0.0, "bias_zero": False, "magnitude_mean": 0.8 * std, "magnitude_spread": 0.75, **extra}


def classifier(outputs, ids, rows=(), optimizer=None):
    m = measured(outputs=outputs, labels=ids, kind="multiclass")
    m.task = Task("multiclass", outputs.shape[1], "softmax", True)
    return with_(m, label_ids=ids, memory=ModelMemory(weights=list(rows)), optimizer=optimizer)


def test_labels_numbered_in_another_order_are_found_with_the_renumbering_that_makes_them_right():
    from whyzero.checks.labels import class_mapping

    rng = np.random.default_rng(5)
    truth = np.repeat(np.arange(4), 16)
    outputs = np.full((64, 4), 0.02)
    outputs[np.arange(64), truth] = 0.94  # confident and right on the model's own numbering
    renumbered = np.array([2, 0, 3, 1])[truth]  # the labels number the classes otherwise
    found = class_mapping(classifier(outputs, renumbered))
    assert [(f.cause, f.severity) for f in found] == [("labels.class_mapping", "critical")]
    assert found[0].evidence["label_accuracy"] == 0.0 and found[0].evidence["renumbered_accuracy"] == 1.0
    permutation = np.asarray(found[0].evidence["permutation"])
    assert (permutation[renumbered] == truth).all()  # the renumbering it names makes every label right
    assert class_mapping(classifier(outputs, truth)) == []  # right as numbered
    shuffled = rng.permutation(truth)
    assert class_mapping(classifier(outputs, shuffled)) == []  # wrong, but no renumbering makes it right


def test_regularized_kernels_shrunk_toward_zero_are_the_cause_unless_the_model_learned():
    from whyzero.checks.training import regularization

    shrunk = [kernel("dense1", 1e-6, 1e-5, l2=1.0), kernel("output", 1e-6, 1e-5, l2=1.0)]
    flat = classifier(np.full((32, 2), 0.5), np.tile([0, 1, 1, 1], 8), shrunk)
    found = regularization(flat)
    assert [(f.cause, f.severity) for f in found] == [("training.regularization", "critical")]
    assert found[0].evidence["l2"] == 1.0 and found[0].evidence["shrunk_layers"] == 2
    right = np.eye(2)[np.tile([0, 1, 1, 1], 8)] * 0.9 + 0.05
    assert [f.severity for f in regularization(classifier(right, np.tile([0, 1, 1, 1], 8), shrunk))] == ["info"]
    mild = [kernel("dense1", 0.15, 1.0, l2=1e-3)]
    assert regularization(classifier(np.full((32, 2), 0.5), np.tile([0, 1, 1, 1], 8), mild)) == []
    # shrunk kernels without a regularizer are not its doing, nor the initializer's when training moved them
    assert regularization(classifier(np.full((32, 2), 0.5), np.tile([0, 1], 16), [kernel("d", 1e-6, 1e-5)])) == []


def test_weights_as_the_initializers_drew_them_are_an_untrained_model():
    from whyzero.checks.training import untrained

    fresh = [kernel("dense1", 0.15, 1.0, bias_zero=True), kernel("output", 0.15, 1.05, bias_zero=True)]
    ids = np.tile([0, 1, 2, 3], 8)
    flat = RNG.random((32, 4)) * 0.05 + 0.2375
    found = untrained(classifier(flat, ids, fresh, {"name": "Adam", "learning_rate": 1e-3, "iterations": 0}))
    assert [(f.cause, f.severity) for f in found] == [("model.untrained", "critical")]
    stepped = {"name": "Adam", "learning_rate": 1e-3, "iterations": 500}
    assert untrained(classifier(flat, ids, fresh, stepped)) == []  # the optimizer took steps
    trained_bias = [kernel("dense1", 0.15, 1.0, bias_zero=False), kernel("output", 0.15, 1.0, bias_zero=True)]
    assert untrained(classifier(flat, ids, trained_bias)) == []  # a bias moved: trained, step count unknown


def test_kernels_an_optimizer_moved_to_one_size_are_not_an_initializer_fault_but_not_established():
    """Every kernel at +-0.0045 after RMSprop's steps: no initializer draws that.  Not ``model.weight_init``; the
    learning rate is a candidate, and the finding says what would separate it from the data."""
    from whyzero.attribution import attribute
    from whyzero.checks.training import steps_that_moved_the_weights

    rows = [kernel(f"dense{i}", 0.0045, 0.03, magnitude_spread=0.01) for i in range(3)]
    rmsprop = {"name": "RMSprop", "learning_rate": 0.01, "iterations": 900}
    flat = classifier(np.full((32, 2), 0.5), np.tile([0, 1], 16), rows, rmsprop)
    assert weight_init(flat) == []
    found = steps_that_moved_the_weights(flat)
    assert [(f.cause, f.severity) for f in found] == [("training.learning_rate_high", "warning")]
    assert found[0].evidence["candidates"] and found[0].evidence["separated_by"]
    attributed, _ = attribute(found)
    assert attributed[0].role == "candidate" and attributed[0].severity == "warning"
    drawn = [kernel(f"dense{i}", 0.0045, 0.03) for i in range(3)]  # an initializer's (tiny) draw: its fault
    tiny_init = classifier(np.full((32, 2), 0.5), np.tile([0, 1], 16), drawn, rmsprop)
    assert steps_that_moved_the_weights(tiny_init) == []
    assert [f.severity for f in weight_init(tiny_init)] == ["warning", "warning", "warning"]


def test_plain_sgd_that_diverged_is_named_by_what_it_did():
    from whyzero.checks.training import steps_that_moved_the_weights

    rows = [dict(kernel("dense1", 0.0, 1.0), nonfinite=512), kernel("output", 3e20, 1e21)]
    ids = np.tile([0, 1], 16)
    for lr, severity in ((0.1, "critical"), (0.02, "warning")):
        m = classifier(np.full((32, 2), 0.5), ids, rows, {"name": "SGD", "learning_rate": lr, "iterations": 220})
        assert [(f.cause, f.severity) for f in steps_that_moved_the_weights(m)] == \
            [("training.learning_rate_high", severity)]
    adam = classifier(np.full((32, 2), 0.5), ids, rows, {"name": "Adam", "learning_rate": 1e-3, "iterations": 220})
    assert steps_that_moved_the_weights(adam) == []  # Adam at its default rate: the data is the suspect


def test_a_learning_rate_is_never_flagged_on_a_model_that_learned_its_labels():
    """An 85%-right Adagrad model whose update ratio is 0.13: a note, not a warning."""
    adagrad = {"name": "Adagrad", "learning_rate": 0.5}
    rows = [gradient("dense1", 1.0, weight=1.0, nonzero=40), gradient("output", 1.0, weight=1.0, nonzero=40)]
    ids = np.tile([0, 1, 1, 0, 1, 0, 0, 1], 4)
    right = np.where(np.arange(32) % 7 == 0, 1 - ids, ids)  # 85% right
    learned = measured(gradients=rows, optimizer=adagrad, outputs=right[:, None] * 0.8 + 0.1, labels=ids)
    learned = with_(learned, label_ids=ids)
    assert learned.learned()
    assert [(f.cause, f.severity) for f in learning_rate(learned)] == [("training.learning_rate_high", "info")]
    flat = with_(measured(gradients=rows, optimizer=adagrad, outputs=np.full((32, 1), 0.5), labels=ids), label_ids=ids)
    assert [f.severity for f in learning_rate(flat)] in (["critical"], ["warning"])


def test_a_regression_loss_on_a_softmax_is_judged_against_the_output_and_labels():
    """loss='mse' on a 10-way softmax: the task is classification (the output says so); on class ids the loss is
    the root (critical), on one-hot labels a model that learned gets a note."""
    from whyzero.checks.model import loss_mismatch
    from whyzero.targets import infer_task

    mse = {"name": "mse", "from_logits": False, "known": True, "raw": "mse"}
    flat = np.full((40, 10), 0.1) + RNG.random((40, 10)) * 1e-3
    assert infer_task(flat, "softmax", mse, np.arange(40) % 10).kind == "multiclass"
    ids = np.arange(40) % 10
    m = with_(classifier(flat, ids), loss=mse, output_shape=[40, 10])
    assert [(f.cause, f.severity) for f in loss_mismatch(m)] == [("model.loss_mismatch", "critical")]
    one_hot = np.eye(10)[ids]
    right = with_(classifier(one_hot * 0.9 + 0.01, ids), loss=mse, labels=one_hot, output_shape=[40, 10])
    assert [(f.cause, f.severity) for f in loss_mismatch(right)] == [("model.loss_mismatch", "info")]


def test_a_right_confident_sigmoid_is_a_note_and_softmax_on_one_unit_ranks_first():
    from whyzero.attribution import attribute
    from whyzero.diagnosis import Finding, rank
    from whyzero.presenter import headline

    pinned = np.where(BINARY == 1, 1.0, 0.0)[:, None]
    confident = case(outputs_=pinned, labels_=BINARY, ids=BINARY)
    assert [(f.cause, f.severity) for f in outputs.saturated(confident)] == [("output.saturated", "info")]
    softmax_one = Finding("model.output_activation", "critical", "softmax on one unit", {"pins_output": True})
    unscaled = Finding("input.unnormalized", "critical", "unnormalized")
    found, _ = attribute([unscaled, softmax_one])
    assert rank(found)[0].cause == "model.output_activation"

    class D:
        findings = attribute([Finding("training.learning_rate_high", "critical", "steps moved",
                                      {"candidates": ["training.learning_rate_high", "the training data"],
                                       "separated_by": "a run at a 10x lower learning rate"})])[0]

    line = headline(D)
    assert line.level == "warning" and line.text.startswith("Root cause not established")
    assert "the training data" in line.text and "10x lower" in line.text


def test_the_output_layer_and_what_follows_it_are_not_hidden_layers():
    """A right model's output sigmoid pinned at 0/1, with a Reshape after it: confidence, not a saturated hidden layer
    (it was a critical root).  The same sigmoid in a hidden layer is still judged."""
    pinned = np.where(np.random.default_rng(0).random((16, 4)) > 0.5, 10.0, -10.0)
    sig = 1 / (1 + np.exp(-pinned))
    rows = [{"layer": "hidden", "std": 0.1}, {"layer": "output", "std": 0.1}]
    layers = [layer("hidden", "relu", np.abs(pinned)), layer("output", "sigmoid", sig), layer("reshape", None, sig)]
    for values in layers[1:]:
        values.values.flat = values.values.n  # every value in the flat region
    m = with_(measured(layers=layers), memory=ModelMemory(weights=rows))
    assert activations.saturation(m) == []
    hidden_sigmoid = [layer("hidden", "sigmoid", sig), layer("output", "sigmoid", sig)]
    hidden_sigmoid[0].values.flat = hidden_sigmoid[0].values.n
    m = with_(measured(layers=hidden_sigmoid), memory=ModelMemory(weights=rows))
    assert [f.layer for f in activations.saturation(m)] == ["hidden"]


@pytest.mark.parametrize("values", [np.array([[0, 255], [255, 255]], np.uint8), np.arange(12).reshape(3, 4) % 5,
                                    np.array([-1, 3, 3, 0]), np.array([70000, 2, 2]), np.array([0.5, 0.0, 0.5]),
                                    np.zeros((0,), np.int64)])
def test_distinct_label_values_are_counted_as_numpy_counts_them(values):
    """Masks and labels are counted with one bincount where they are small non-negative integers; whatever the
    values, the distinct ones and their counts are numpy's."""
    got, expected = unique_counts(values), np.unique(values, return_counts=True)
    assert [a.tolist() for a in got] == [a.tolist() for a in expected] and got[0].dtype == expected[0].dtype
