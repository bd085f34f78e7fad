"""Every model a user brings: nested, subclassed, multi-output, custom objects, notebook Lambdas, token ids,
mixed precision; and never a traceback."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import predictions

import whyzero
from whyzero import cli
from whyzero.errors import UnsafeModelError, WhyzeroError

RNG = np.random.default_rng(0)
X = RNG.random((32, 8)).astype("float32")
Y = (X[:, 0] > 0.5).astype("int64")


def dense_classifier(**compile_kwargs):
    inputs = keras.Input((8,))
    h = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(h))
    model.compile("adam", compile_kwargs.get("loss", "binary_crossentropy"))
    return model


def test_a_subclassed_model_is_probed_layer_by_layer():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = keras.layers.Dense(8, activation="relu")
            self.out = keras.layers.Dense(1, activation="sigmoid")

        def call(self, x):
            return self.out(self.hidden(x))

    net = Net()
    net.compile("adam", "binary_crossentropy")
    net.fit(X, Y, epochs=1, verbose=0)
    d = whyzero.diagnose(net, X, labels=Y)
    assert len(d.summaries["activations"]) == 2
    assert len(d.summaries["gradients"]["rows"]) == 2


def test_nested_layers_are_named_by_their_path():
    inner_in = keras.Input((8,))
    features = keras.Model(inner_in, keras.layers.Dense(4, activation="relu", name="d")(inner_in), name="features")
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="head")(features(inputs)))
    model.compile("adam", "binary_crossentropy")
    d = whyzero.diagnose(model, X, labels=Y)
    assert [r["layer"] for r in d.summaries["activations"]] == ["features/d", "head"]
    assert [r["name"] for r in d.model["layers"]] == ["features", "features/d", "head"]
    assert [r["layer"] for r in d.summaries["model"]["weights"]] == ["features/d", "head"]


def test_one_head_of_a_multi_output_model_is_diagnosed_and_named():
    inputs = keras.Input((8,))
    h = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(1, activation="sigmoid", name="cls")(h),
                                 keras.layers.Dense(1, name="reg")(h)])
    model.compile("adam", ["binary_crossentropy", "mse"])
    d = whyzero.diagnose(model, X, labels=Y)
    assert d.model["task"] == "binary" and any("diagnosing 'cls'" in n for n in d.notes)
    d = whyzero.diagnose(model, X, labels=RNG.normal(size=32), output="reg")
    assert d.model["task"] == "regression" and d.model["loss"]["name"] == "mse"
    with pytest.raises(whyzero.WhyzeroError, match="Expected an output among"):
        whyzero.diagnose(model, X, output="nope")


def test_token_ids_beyond_the_vocabulary_are_invalid_inputs():
    inputs = keras.Input((6,), dtype="int32")
    h = keras.layers.Embedding(10, 4, name="embedding")(inputs)
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(inputs, out)
    model.compile("adam", "binary_crossentropy")
    tokens = RNG.integers(0, 10, (16, 6)).astype("int32")
    assert "input.dtype_mismatch" not in whyzero.diagnose(model, tokens).causes("info")
    tokens[0, 0] = 25
    found = whyzero.diagnose(model, tokens).find("input.invalid_values")
    assert found and found[0].evidence["invalid_ids"] == 1 and found[0].evidence["vocabulary"] == 10


def test_token_ids_scaled_like_features_are_named_and_probed_as_the_model_reads_them():
    """Ids divided by the vocabulary size (0.02..0.98) all truncate to id 0 inside the Embedding: the model
    predicts one thing, and whyzero says why rather than "outside the vocabulary"."""
    inputs = keras.Input((6,))
    h = keras.layers.Embedding(50, 4, name="embedding")(inputs)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling1D()(h))
    model = keras.Model(inputs, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    scaled = (RNG.integers(1, 50, (16, 6)) / 50).astype("float32")
    pred = model.predict(scaled, verbose=0)
    assert np.allclose(pred, pred[0])  # the symptom: one prediction for every input
    d = whyzero.diagnose(model, scaled, labels=RNG.integers(0, 3, 16))
    found = d.find("input.invalid_values")
    assert found and found[0].evidence["fractional_ids"] == 96 and "not whole numbers" in found[0].title
    assert d.findings[0].cause == "input.invalid_values"
    assert any(f.cause == "output.constant" for f in d.findings)


def test_mixed_precision_summaries_are_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = dense_classifier()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    d = whyzero.diagnose(model, X, labels=Y)
    assert all(np.isfinite(r["mean"]) for r in d.summaries["activations"])


def save(model, tmp_path, name) -> str:
    path = tmp_path / name
    model.save(path)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    return str(path)


def test_a_notebook_lambda_without_output_shape_loads_under_trust(tmp_path, capsys):
    inputs = keras.Input((8,))
    out = keras.layers.Lambda(lambda t: 1 / (1 + keras.ops.exp(-t * 1e5)))(keras.layers.Dense(1)(inputs))
    model = keras.Model(inputs, out)
    model.compile("adam", "binary_crossentropy")
    path = save(model, tmp_path, "notebook.keras")
    args = ["diagnose", path, "--inputs", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--quiet"]
    assert cli.main(args) == 2 and "--trust-model" in capsys.readouterr().err
    assert cli.main(args + ["--trust-model", "--json", str(tmp_path / "d.json")]) == 0
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["findings"][0]["cause"] == "model.unstable_lambda"


DICE = """import keras

@keras.saving.register_keras_serializable("tests")
def dice_loss(y_true, y_pred):
    return 1 - 2 * keras.ops.sum(y_true * y_pred) / (keras.ops.sum(y_true + y_pred) + 1e-6)
"""


def test_a_custom_loss_loads_without_its_code_and_fully_with_it(tmp_path, capsys):
    namespace: dict = {}
    exec(DICE, namespace)  # noqa: S102 - the test's own code
    path = save(dense_classifier(loss=namespace["dice_loss"]), tmp_path, "dice.keras")
    keras.saving.get_custom_objects().clear()
    code = tmp_path / "objects.py"
    code.write_text(DICE)
    base = ["diagnose", path, "--inputs", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--quiet",
            "--json", str(tmp_path / "d.json")]
    assert cli.main(base) == 0
    notes = json.loads((tmp_path / "d.json").read_text())["notes"]
    assert any("without its compiled loss" in n for n in notes)
    with pytest.raises(UnsafeModelError):
        whyzero.diagnose(path, str(tmp_path / "x.npy"), custom_objects=str(code))
    assert cli.main(base + ["--custom-objects", str(code), "--trust-model"]) == 0
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["model"]["loss"]["raw"] == "dice_loss"
    assert not any("without its compiled loss" in n for n in d["notes"])


def test_an_unexpected_error_is_one_line_and_a_details_file(monkeypatch, tmp_path, capsys):
    import whyzero.engine

    def boom(*args, **kwargs):
        raise RuntimeError("something odd\nsecond line")

    monkeypatch.setattr(whyzero.engine, "diagnose", boom)
    np.save(tmp_path / "x.npy", X)
    assert cli.main(["diagnose", "m.keras", "--inputs", str(tmp_path / "x.npy")]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("whyzero: internal error: RuntimeError: something odd")
    details = Path(err.split("details in ")[1].rstrip(")"))
    assert "Traceback" in details.read_text()


def test_what_could_not_be_checked_is_said():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(4)(inputs)))
    d = whyzero.diagnose(model, X)  # not compiled, no labels
    reasons = {s["check"]: s["reason"] for s in d.summaries["skipped"]}
    assert "no optimizer" in reasons["learning_rate"] or "no gradients" in reasons["learning_rate"]
    assert "no labels" in reasons["threshold"]
    assert "no training data given" in reasons["range_mismatch"]


def test_labels_outside_the_classes_and_masks_that_do_not_fit_are_findings():
    d = whyzero.diagnose(dense_classifier(), X, labels=np.arange(32) % 4)
    assert d.find("labels.encoding") and d.find("labels.encoding")[0].severity == "critical"
    inputs = keras.Input((8, 8, 1))
    seg = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    seg.compile("adam", "binary_crossentropy")
    images = RNG.random((6, 8, 8, 1)).astype("float32")
    d = whyzero.diagnose(seg, images, masks=(RNG.random((4, 8, 8)) > 0.5).astype("int64"))
    assert "4 masks for 6 images" in d.find("labels.mask_mismatch")[0].title
    d = whyzero.diagnose(seg, images, masks=(RNG.random((6, 4, 4)) > 0.5).astype("int64"))
    assert "Masks are 4x4 but the model predicts 8x8" in d.find("labels.mask_mismatch")[0].title


def float16_model(scale):
    """Under mixed_float16: a Dense layer, then exp (float16's largest value, 65504, is exp(11.09))."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8,))
        h = keras.layers.Dense(4, kernel_initializer=keras.initializers.RandomNormal(stddev=scale), name="big")(inputs)
        h = keras.layers.Activation("exponential", name="exp")(h)
        return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", dtype="float32")(h))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_float16_overflow_is_named():
    """Under mixed_float16 a layer whose values pass 65504 gives Inf, then NaN: activation.overflow at that layer is
    the root; the same model with small kernels is clean of it."""
    model = float16_model(1.0)
    out = predictions(model, X * 10)
    assert not np.isfinite(out).all() or np.std(out) == 0  # the symptom: NaN or one value
    d = whyzero.diagnose(model, X * 10)
    first = next(f for f in d.findings if f.severity != "info")
    assert (first.cause, first.role, first.layer) == ("activation.overflow", "root", "exp")
    assert first.evidence["dtype_policy"] == "mixed_float16" and first.evidence["inf"] + first.evidence["nan"] > 0
    assert first.proof.fix == "compute every layer in float32" and "output spread nan" in first.proof.text
    assert not whyzero.diagnose(float16_model(0.1), X).find("activation.overflow")


def two_input_model():
    """An image branch with BatchNorm and a tabular branch, trained briefly (its BatchNorm memory is partial)."""
    keras.utils.set_random_seed(3)
    image, meta = keras.Input((12, 12, 3), name="image"), keras.Input((4,), name="meta")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv")(image)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(keras.layers.BatchNormalization(name="bn")(x))
    m = keras.layers.Dense(8, activation="relu", name="meta_dense")(meta)
    out = keras.layers.Dense(2, activation="softmax", name="out")(keras.layers.Concatenate()([x, m]))
    model = keras.Model([image, meta], out)
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(3)
    images = rng.random((256, 12, 12, 3)).astype("float32")
    meta_x = rng.normal(size=(256, 4)).astype("float32")
    labels = (images[..., 0].mean((1, 2)) + 0.1 * meta_x[:, 0] > 0.5).astype("int64")
    model.fit({"image": images, "meta": meta_x}, labels, epochs=5, verbose=0)
    return model, images[:96], meta_x[:96], labels[:96]


def test_a_model_with_two_inputs_is_probed_and_its_image_input_checked(tmp_path):
    model, images, meta_x, labels = two_input_model()
    d = whyzero.diagnose(model, {"image": images, "meta": meta_x}, labels=labels)
    assert any("2 inputs" in n and "'image'" in n for n in d.notes)
    assert {"conv", "bn", "meta_dense", "out"} <= {r["layer"] for r in d.summaries["activations"]}
    assert d.is_clean, [(f.cause, f.title) for f in d.findings]  # partly converged BatchNorm memory: no alarm
    # the same images fed as 0..255: the predictions collapse, and the input is named first
    wrong = model.predict({"image": images * 255, "meta": meta_x}, verbose=0).argmax(1)
    assert np.bincount(wrong, minlength=2).max() / len(wrong) > 0.95
    np.savez(tmp_path / "x.npz", image=images * 255, meta=meta_x)
    d = whyzero.diagnose(model, tmp_path / "x.npz", labels=labels)
    assert d.findings[0].cause == "input.range_mismatch" and d.findings[0].role == "root"
    np.savez(tmp_path / "bad.npz", image=images)
    with pytest.raises(whyzero.WhyzeroError, match=r"missing \['meta'\]"):
        whyzero.diagnose(model, tmp_path / "bad.npz")


def test_labels_per_head_come_from_an_npz_by_output_name(tmp_path):
    inputs = keras.Input((8,))
    h = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(1, activation="sigmoid", name="cls")(h),
                                 keras.layers.Dense(1, name="reg")(h)])
    model.compile("adam", ["binary_crossentropy", "mse"])
    np.savez(tmp_path / "y.npz", cls=Y, reg=RNG.normal(size=32) * 1000)
    d = whyzero.diagnose(model, X, labels=tmp_path / "y.npz", output="reg")
    assert d.model["task"] == "regression" and d.inputs["labels"] == [32]
    assert "labels.target_scale" in d.causes()  # the reg head's targets (x1000) were the ones read
    d = whyzero.diagnose(model, X, labels=tmp_path / "y.npz")
    assert d.model["task"] == "binary" and "labels.target_scale" not in d.causes()


def test_a_keras2_backbone_nested_in_a_keras2_model_is_probed_inside():
    import tf_keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    inner_in = tf_keras.Input((8,))
    h = tf_keras.layers.Dense(16, activation="relu", name="d1")(inner_in)
    features = tf_keras.Model(inner_in, tf_keras.layers.Dense(16, activation="relu", name="d2")(h), name="features")
    inputs = tf_keras.Input((8,))
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(1, activation="sigmoid", name="head")(features(inputs)))
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=20, verbose=0)
    d = whyzero.diagnose(model, x, labels=y)
    assert [r["layer"] for r in d.summaries["activations"]] == ["features/d1", "features/d2", "head"]
    assert [r["layer"] for r in d.summaries["gradients"]["rows"]] == ["features/d1", "features/d2", "head"]
    assert d.is_clean, [(f.cause, f.title) for f in d.findings]
    # the inner layer's bias pushed far below zero: it never fires, and the output goes flat
    layer = features.get_layer("d1")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, bias - 100])
    assert np.ptp(model.predict(x, verbose=0)) < 1e-6
    d = whyzero.diagnose(model, x, labels=y)
    assert (d.findings[0].cause, d.findings[0].layer, d.findings[0].role) == ("activation.dead_relu", "features/d1",
                                                                               "root")


def test_another_input_fed_unscaled_is_named_as_the_root():
    model, images, meta_x, labels = two_input_model()
    raw = meta_x * 300 + 2000  # the tabular input fed as raw values: the predictions collapse to one class
    predicted = model.predict({"image": images, "meta": raw}, verbose=0).argmax(1)
    assert np.bincount(predicted, minlength=2).max() / len(predicted) > 0.95
    d = whyzero.diagnose(model, {"image": images, "meta": raw}, labels=labels)
    root = d.findings[0]
    assert root.role == "root" and root.cause == "input.unnormalized" and root.evidence["input"] == "meta"
    assert root.title.startswith("Input 'meta':")
    from whyzero.diagnosis import Diagnosis
    from whyzero.recheck import recheck

    again = recheck(Diagnosis.from_json(d.to_json()))  # the other input's statistics are stored with it
    assert [(f.cause, f.evidence.get("input")) for f in again.findings] == \
        [(f.cause, f.evidence.get("input")) for f in d.findings]


def test_a_training_that_diverged_to_nan_weights_is_named_first():
    """SGD at 0.5 on unscaled regression targets: the loss went NaN and so did every weight.  The predictions
    are one NaN for every input; the root is the learning rate, named by what it did (the diverged training, first:
    NaN weights fix the output whatever else is wrong), not 'all zero' kernels or the targets."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(h))
    model.compile(keras.optimizers.SGD(0.5), "mse")
    targets = 1000 + 500 * X[:, 0]
    keras.utils.set_random_seed(1)
    model.fit(X * 100, targets, epochs=3, batch_size=8, verbose=0)
    outputs = model.predict(X * 100, verbose=0)
    assert np.isnan(outputs).all()  # the symptom
    d = whyzero.diagnose(model, X * 100, labels=targets)
    first = d.findings[0]
    assert (first.cause, first.role, first.severity) == ("training.learning_rate_high", "root", "critical")
    assert "diverged" in first.title and "SGD at 0.5" in first.title
    nan_weights = d.find("gradient.exploding")[0]
    assert "NaN/Inf" in nan_weights.title and d.root_of(nan_weights) is first
    assert {"model.weight_init", "labels.target_scale"}.isdisjoint(f.cause for f in d.findings)
    assert "output.constant" in [f.cause for f in d.findings]


def test_a_healthy_regression_has_no_diverged_weights():
    inputs = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(h))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(X, X[:, 0] * 2 - 1, epochs=30, verbose=0)
    d = whyzero.diagnose(model, X, labels=X[:, 0] * 2 - 1)
    assert [f.cause for f in d.findings if f.severity != "info"] == []
    assert all(row["nonfinite"] == 0 for row in d.summaries["model"]["weights"])


def _tagger(tags_of, epochs, lr=1e-2):
    """An LSTM tagger, a class for every token: (N, T) ids in, (N, T, K) probabilities out."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 40, size=(800, 12)).astype("int32")
    tags = tags_of(tokens)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,), dtype="int32"), keras.layers.Embedding(40, 16),
                              keras.layers.LSTM(24, return_sequences=True),
                              keras.layers.TimeDistributed(keras.layers.Dense(int(tags.max()) + 1,
                                                                              activation="softmax"))])
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy")
    model.fit(tokens, tags, epochs=epochs, batch_size=32, verbose=0)
    return model, tokens[:96], tags[:96]


def test_a_sequence_tagger_with_a_label_per_position_is_checked_per_position():
    """(N, T) labels for an (N, T, K) output are one class per token, not 'labels with T columns'."""
    model, tokens, tags = _tagger(lambda t: np.minimum((t % 5 == 0) + 2 * (t % 7 == 0), 2), epochs=6)
    predicted = model.predict(tokens, verbose=0).argmax(-1)
    assert (predicted == tags).mean() > 0.9  # healthy: it tags
    d = whyzero.diagnose(model, tokens, labels=tags)
    assert [f.cause for f in d.findings if f.severity != "info"] == []
    assert any("positions of the output" in note for note in d.notes)
    assert d.model["task"] == "segmentation"
    labels = d.summaries["labels"]
    assert labels["kind"] == "per-position labels" and "masks" not in labels  # no images to draw on
    assert "predicted_masks" not in d.summaries["outputs"]


def test_a_tagger_that_learned_the_majority_tag_is_named_per_position():
    model, tokens, tags = _tagger(lambda t: (t == 7).astype("int32"), epochs=1, lr=1e-3)
    assert (model.predict(tokens, verbose=0).argmax(-1) == 0).all()  # the symptom: 'O' everywhere
    d = whyzero.diagnose(model, tokens, labels=tags)
    causes = [f.cause for f in d.findings]
    assert causes[0] == "labels.imbalance" and "output.majority_class" in causes
    assert "per-position labels" in d.findings[0].title
    assert "output.shape_mismatch" not in causes and "labels.mask_mismatch" not in causes


def test_the_pass_reads_its_layers_while_it_is_traced_instead_of_a_dry_run(monkeypatch):
    """A model whose output shape says what the task is needs no eager dry run before the pass (MobileNetV2:
    0.4 s): the layers to summarize are read off the call traced for the pass, the same as a dry run finds."""
    from whyzero import engine
    from whyzero.probes import plan as probe_plan

    calls = []
    monkeypatch.setattr(engine, "dry_run", lambda *a, **k: calls.append(a) or probe_plan.dry_run(*a, **k))
    model = dense_classifier()
    d = whyzero.diagnose(model, X, labels=Y)
    assert calls == []
    plan, first = probe_plan.dry_run(model, X[:2])
    assert [r["layer"] for r in d.summaries["activations"]] == plan.names == ["hidden", "out"]
    assert d.model["task"] == "binary" and len(d.summaries["gradients"]["rows"]) == 2
    # a Lambda output's values decide the task: that model still gets its dry run
    inputs = keras.Input((8,))
    lam = keras.Model(inputs, keras.layers.Lambda(lambda t: 1 / (1 + keras.ops.exp(-t)))(
        keras.layers.Dense(1)(inputs)))
    lam.compile("adam", "binary_crossentropy")
    whyzero.diagnose(lam, X, labels=Y, trust_model=True)
    assert len(calls) == 1


def test_without_any_memory_of_training_inputs_the_labels_name_the_preprocessing():
    """A tanh CNN (no BatchNorm, no Normalization layer) trained on raw 0..255 pixels and fed x / 255: it
    predicts one class for most images.  Nothing in the model remembers the training scale, so the labelled
    samples judge the standard preprocessings; raw pixels make it right again, and the proof re-runs it so."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (np.repeat(np.repeat(digits.images, 2, 1), 2, 2)[..., None] / 16.0).astype("float32")  # 16x16, 0..1
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(16, 3, activation="tanh"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(10, activation="softmax")])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(np.round(x * 255), digits.target, epochs=8, batch_size=32, verbose=0)
    batch, labels = x[:128], digits.target[:128]
    predicted = model.predict(batch, verbose=0).argmax(1)
    assert np.bincount(predicted).max() / len(batch) > 0.6 and np.mean(predicted == labels) < 0.5  # the symptom
    d = whyzero.diagnose(model, batch, labels=labels)
    first = d.findings[0]
    assert first.cause == "input.range_mismatch" and first.severity == "critical"
    assert first.title.startswith("Fed as raw 0..255 pixels, the model gets")
    assert first.evidence["best_match"] == "none" and first.evidence["accuracy_best"] >= 0.9
    assert first.proof and first.proof.fixed
    # the healthy twin, fed as trained: right as given, so nothing to explain and no what-if run
    healthy = whyzero.diagnose(model, np.round(batch * 255), labels=labels)
    assert healthy.summaries["inputs"]["whatif"] is None
    assert "input.range_mismatch" not in [f.cause for f in healthy.findings]


def test_fan_out_initialized_and_depthwise_convolutions_are_on_scale():
    """EfficientNet initializes its convolutions by fan_out (VarianceScaling(2.0, 'fan_out')); a depthwise
    kernel's fan_out is per channel (k*k), so its std is ~12x what Keras' fans_in-based Glorot gives.  Neither
    is a bad initialization; a kernel 12x the He scale still is."""
    from whyzero.checks.model import WEIGHT_SCALE_HIGH
    from whyzero.model_info import weight_table

    fan_out = keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")
    inputs = keras.Input((16, 16, 32))
    h = keras.layers.DepthwiseConv2D(3, depthwise_initializer=fan_out, name="dwconv")(inputs)
    h = keras.layers.Conv2D(8, 1, kernel_initializer=fan_out, name="project")(h)
    huge = keras.layers.Conv2D(8, 3, name="huge")(h)
    model = keras.Model(inputs, huge)
    he = np.sqrt(2.0 / (3 * 3 * 8))
    model.get_layer("huge").kernel.assign(np.random.default_rng(0).normal(0, 12 * he, (3, 3, 8, 8)))
    rows = {r["layer"]: r for r in weight_table(model)}
    assert rows["dwconv"]["ratio"] < 1.5 and rows["project"]["ratio"] < 1.5  # 5.7x and 2x before
    assert rows["huge"]["ratio"] > WEIGHT_SCALE_HIGH


def test_an_untrained_model_gets_no_label_what_if():
    """BatchNorm statistics at their initial values: the model never saw data, so no preprocessing can make it
    right and the six extra passes are skipped (ResNet50: 7.6 s)."""
    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    h = keras.layers.BatchNormalization()(h)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(keras.layers.Flatten()(h)))
    model.compile("adam", "sparse_categorical_crossentropy")
    images = np.random.default_rng(0).uniform(0, 1, (32, 16, 16, 3)).astype("float32")
    d = whyzero.diagnose(model, images, labels=np.arange(32) % 4)
    assert d.summaries["inputs"]["whatif"] is None


WORDS = np.array(["good", "bad", "fine", "awful", "great", "poor", "nice", "meh"])


def text_model(head_units: int, head_activation: str, epochs: int):
    """Raw strings into TextVectorization, an Embedding, a pooled score: the shape of Keras' text tutorial."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    texts = np.array([" ".join(rng.choice(WORDS, 6)) for _ in range(400)])
    labels = np.array([int(sum(w in ("good", "great", "nice", "fine") for w in t.split()) > 3) for t in texts])
    keras.utils.set_random_seed(0)
    vectorize = keras.layers.TextVectorization(max_tokens=20, output_sequence_length=6)
    vectorize.adapt(texts)
    inputs = keras.Input((1,), dtype="string")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(20, 8, name="embed")(vectorize(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(head_units, activation=head_activation, name="head")(h))
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    if epochs:
        model.fit(tf.constant(texts[:, None]), labels, epochs=epochs, verbose=0)
    return model, texts[:128, None], labels[:128], model(tf.constant(texts[:128, None])).numpy()


def test_a_model_that_reads_raw_text_is_diagnosed_from_its_strings(tmp_path, capsys):
    """A TextVectorization model takes the texts themselves: its layers are probed from the strings, the input
    statistics are the texts' lengths, and the checks of input values say they do not apply."""
    model, texts, labels, pred = text_model(1, "sigmoid", epochs=20)
    assert np.mean((pred[:, 0] > 0.5) == labels) >= 0.8  # healthy: right on most texts
    d = whyzero.diagnose(model, texts.astype(object), labels=labels)  # a list of Python strings, as people hold them
    assert d.is_clean, [(f.cause, f.severity) for f in d.findings]
    assert [row["channel"] for row in d.summaries["inputs"]["table"]] == ["words", "characters"]
    assert d.summaries["inputs"]["table"][0]["mean"] == 6 and d.summaries["inputs"]["texts"][0] == texts[0, 0]
    assert d.summaries["inputs"]["empty_texts"] == 0
    assert "embed" in [layer["name"] for layer in d.summaries["measurements"]["layers"]]
    skipped = {s["check"]: s["reason"] for s in d.summaries["skipped"]}
    assert "text inputs" in skipped["unnormalized"]

    broken, texts, labels, pred = text_model(1, "softmax", epochs=0)  # softmax over one unit: always 1.0
    assert np.all(pred == 1.0)
    model_path = tmp_path / "text.keras"
    broken.save(model_path)
    np.save(tmp_path / "texts.npy", texts)
    np.save(tmp_path / "labels.npy", labels)
    args = ["diagnose", str(model_path), "--inputs", str(tmp_path / "texts.npy"), "--labels",
            str(tmp_path / "labels.npy"), "--quiet", "--json", str(tmp_path / "d.json")]
    assert cli.main(args) == 0
    found = json.loads((tmp_path / "d.json").read_text())["findings"]
    assert found[0]["cause"] == "model.output_activation" and found[0]["role"] == "root"
    assert cli.main(["stats", str(tmp_path / "texts.npy"), "--out", str(tmp_path / "s.json")]) == 2
    assert "numeric inputs. Received: text" in capsys.readouterr().err


def test_text_for_a_model_that_reads_numbers_is_one_line():
    model = dense_classifier()
    with pytest.raises(whyzero.WhyzeroError, match="Expected a numeric batch. Received: dtype <U"):
        whyzero.diagnose(model, np.array([["a"] * 8] * 4))


def test_one_hot_masks_are_read_as_class_ids_and_rgb_masks_are_not():
    """A 3-class segmenter trained with categorical cross-entropy on one-hot masks (N, H, W, 3): the masks are
    its classes, not an RGB image; a mask with a black background and coloured regions stays an RGB mask."""
    from scipy.ndimage import uniform_filter

    from whyzero.fed import one_hot_masks

    rng = np.random.default_rng(0)
    smooth = uniform_filter(rng.normal(size=(240, 24, 24)), size=(1, 7, 7))
    classes = np.digitize(smooth, [-0.1, 0.1])
    x = (smooth[..., None] * 5).astype("float32")
    one_hot = np.eye(3, dtype="float32")[classes]
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 1))
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(h))
    model.compile(keras.optimizers.Adam(3e-3), "categorical_crossentropy")
    model.fit(x, one_hot, epochs=6, verbose=0)
    assert np.mean(predictions(model, x[:48]).argmax(-1) == classes[:48]) >= 0.8  # healthy
    d = whyzero.diagnose(model, x[:48], masks=one_hot[:48])
    assert d.is_clean, [(f.cause, f.severity, f.title) for f in d.findings]
    assert any("one-hot over 3 classes" in note for note in d.notes)
    rgb = np.zeros((2, 4, 4, 3), np.uint8)
    rgb[:, :2, :2] = (1, 0, 0)  # a red region on black: not one class a pixel
    assert one_hot_masks(rgb, []) is rgb


def test_a_text_input_beside_a_numeric_one_is_measured_by_length_and_not_value_checked():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    texts = np.array([" ".join(rng.choice(WORDS[:4], 5)) for _ in range(200)])
    numbers = rng.normal(size=(200, 3)).astype("float32")
    labels = (numbers[:, 0] > 0).astype("int64")
    vectorize = keras.layers.TextVectorization(max_tokens=10, output_sequence_length=5)
    vectorize.adapt(texts)
    keras.utils.set_random_seed(0)
    text_in, number_in = keras.Input((1,), dtype="string", name="text"), keras.Input((3,), name="num")
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(10, 4)(vectorize(text_in)))
    joined = keras.layers.Concatenate()([h, keras.layers.Dense(8, activation="relu")(number_in)])
    model = keras.Model([text_in, number_in], keras.layers.Dense(1, activation="sigmoid")(joined))
    model.compile(keras.optimizers.Adam(1e-2), "binary_crossentropy")
    model.fit({"text": tf.constant(texts[:, None]), "num": numbers}, labels, epochs=10, verbose=0)
    pred = model({"text": tf.constant(texts[:64, None]), "num": tf.constant(numbers[:64])}).numpy()
    assert np.mean((pred[:, 0] > 0.5) == labels[:64]) >= 0.9  # healthy
    d = whyzero.diagnose(model, {"text": texts[:64, None], "num": numbers[:64]}, labels=labels[:64])
    assert d.is_clean, [(f.cause, f.severity, f.title) for f in d.findings]
    other = d.summaries["measurements"]["other_inputs"][0]
    assert other["name"] == "text" and other["stats"]["count"] == [64, 64]  # words and characters of 64 texts


def test_nothing_the_user_gave_is_dropped_in_silence(tmp_path):
    """Interpolated masks too large to store with the diagnosis (20 of 128x128: over MAX_STORED_VALUES) are still
    read by the live diagnosis (labels.encoding), and only its re-check says they were left out; a labels file of
    another batch is refused with the file's own count, not the sample limit's."""
    from whyzero.measurements import MAX_STORED_VALUES
    from whyzero.recheck import recheck

    inputs = keras.Input((128, 128, 1))
    seg = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    seg.compile("adam", "binary_crossentropy")
    images = RNG.random((20, 128, 128, 1)).astype("float32")
    masks = (images[..., 0] > 0.5).astype("float32")
    masks[:, ::7, :] = 0.5  # rows blurred by a bilinear resize
    assert masks.size > MAX_STORED_VALUES
    d = whyzero.diagnose(seg, images, masks=masks)
    found = d.find("labels.encoding")
    assert found and found[0].severity == "critical" and found[0].evidence["fractional_share"] > 0.1
    again = recheck(d)
    assert any("masks" in s["reason"] and "too large" in s["reason"] for s in again.summaries["skipped"])

    with pytest.raises(WhyzeroError, match=r"Expected one label per input \(20 inputs\)\. Received: 540 labels"):
        whyzero.diagnose(dense_classifier(), RNG.random((20, 8)).astype("float32"), labels=np.zeros(540, int))
