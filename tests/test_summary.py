"""Streaming summaries: merging chunks gives the same numbers as one pass."""

import numpy as np
import pytest
import tensorflow as tf

from whyzero.checks.outputs import best_threshold, roc_auc
from whyzero.probes.inputs import InputStats
from whyzero.probes.summary import tensor_summary
from whyzero.probes.values import BOUNDARIES, N_BINS, ValueSummary


def summarize(x, **kw):
    s = ValueSummary()
    s.update({k: v.numpy() for k, v in tensor_summary(tf.constant(x), **kw).items()})
    return s


def test_summary_counts_on_a_literal():
    x = np.array([[0.0, 1.0, -2.0], [0.0, 3.0, np.nan]], np.float32)
    s = summarize(x)
    assert (s.n, s.nan, s.zero, s.negative, s.one) == (6, 1, 2, 1, 1)
    assert s.mean == pytest.approx(2.0 / 5)
    assert (s.min, s.max) == (-2.0, 3.0)
    assert s.hist.sum() == 6 and s.hist.size == N_BINS
    # units 0 (0, 0) and 2 (-2, NaN) never exceeded 0; unit 1 did
    assert s.never_active_share == pytest.approx(2 / 3)


def test_chunks_merge_to_the_whole():
    from whyzero.probes.summary import HIST_MAX_VALUES

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4, 3, 4)).astype(np.float32)
    assert x.size <= HIST_MAX_VALUES  # binned exactly, whole or in parts
    whole = summarize(x)
    merged = ValueSummary()
    for part in np.split(x, 4):
        merged.update(summarize(part).as_part())
    assert np.array_equal(whole.hist, merged.hist)
    assert merged.mean == pytest.approx(whole.mean, rel=1e-6)
    assert merged.std == pytest.approx(whole.std, rel=1e-6)
    assert merged.spread_across_samples == pytest.approx(whole.spread_across_samples, rel=1e-6)
    assert np.array_equal(whole.unit_max, merged.unit_max)


def test_summaries_of_two_halves_merge_to_the_summary_of_the_whole():
    """``ValueSummary.merge`` (what dataset-scale statistics rely on): two halves summarized apart, as on two
    machines, merge to the whole's counts, moments, extremes and histogram (exact here: under HIST_MAX_VALUES)."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0.0, 1.0, size=(30, 5, 6)), rng.normal(3.0, 10.0, size=(20, 5, 6))])
    x[3, 1, 2], x[40, 0, 0] = 0.0, 1.0
    x = x.astype(np.float32)
    whole = summarize(x)
    left, right = summarize(x[:30]), summarize(x[30:])
    merged = left.merge(right)
    assert merged is not left and merged is not right and left.n == 30 * 5 * 6  # the halves stay as they were
    assert (merged.n, merged.n_samples, merged.zero, merged.negative, merged.one) == \
        (whole.n, whole.n_samples, whole.zero, whole.negative, whole.one) == (x.size, 50, 1, int((x < 0).sum()), 1)
    assert (merged.min, merged.max) == (whole.min, whole.max) == (float(x.min()), float(x.max()))
    assert merged.mean == pytest.approx(x.astype(np.float64).mean(), rel=1e-6)
    assert merged.std == pytest.approx(x.astype(np.float64).std(), rel=1e-5)
    assert np.array_equal(merged.hist, whole.hist) and merged.hist.sum() == x.size
    assert np.array_equal(merged.unit_max, whole.unit_max)
    assert merged.spread_across_samples == pytest.approx(whole.spread_across_samples, rel=1e-6)
    assert merged.sample_rms == whole.sample_rms


def test_a_huge_layer_counts_on_a_subsample_with_exact_moments():
    """Past COUNT_MAX_VALUES a layer's shares come from an even subsample (within a fraction of a percent);
    the moments, the extremes and each unit's maximum stay exact."""
    from whyzero.probes.summary import COUNT_MAX_VALUES

    rng = np.random.default_rng(2)
    x = np.maximum(rng.normal(0.3, 1.0, size=(4, 96, 96, 32)), 0).astype(np.float32)  # ReLU-like: ~38% zeros
    x[:, :, :, 5] = 0.0  # one dead unit
    x[1, 7, 11, 2] = 1e5  # one outlier the subsample would miss
    assert x.size > 8 * COUNT_MAX_VALUES
    s = summarize(x)
    assert s.share("zero") == pytest.approx(np.mean(x == 0), abs=0.005)
    assert s.negative == 0 and s.hist.sum() == pytest.approx(x.size, rel=1e-3)
    assert s.mean == pytest.approx(x.astype(np.float64).mean(), rel=1e-5)
    assert s.rms == pytest.approx(np.sqrt(np.mean(x.astype(np.float64) ** 2)), rel=1e-5)
    assert (s.min, s.max) == (0.0, 1e5)
    assert np.array_equal(s.unit_max, x.max(axis=(0, 1, 2)))
    assert s.never_active_share == pytest.approx(1 / 32)
    per_sample_zero = np.mean(x.reshape(4, -1) == 0, axis=1)
    assert np.allclose(s.sample_zero, per_sample_zero, atol=0.01)


def test_collapsed_layer_has_zero_relative_spread():
    x = np.tile(np.arange(8, dtype=np.float32), (10, 1))
    assert summarize(x).relative_spread == 0.0


def test_flat_region_counts():
    x = np.array([[0.001, 0.5, 0.999]], np.float32)
    assert summarize(x, flat_low=0.0067, flat_high=0.9933).flat == 2


def test_histogram_edges_are_fixed_and_symmetric():
    assert np.allclose(BOUNDARIES, -BOUNDARIES[::-1])
    assert 0.0 in BOUNDARIES


def test_input_stats_merge_and_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, size=(20, 8, 8, 3)).astype(np.float32)
    whole = InputStats.of(x)
    parts = InputStats()
    for part in np.split(x, 5):
        parts.update(part)
    assert np.allclose(whole.mean, x.reshape(-1, 3).mean(0))
    assert np.allclose(whole.std, x.reshape(-1, 3).std(0), rtol=1e-6)
    assert np.allclose(parts.mean, whole.mean) and np.array_equal(parts.hist, whole.hist)
    whole.save(tmp_path / "s.json")
    loaded = InputStats.load(tmp_path / "s.json")
    assert np.allclose(loaded.mean, whole.mean) and loaded.shape == [8, 8, 3]


def test_input_stats_from_dataset():
    x = np.arange(60, dtype=np.float32).reshape(20, 3)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(20))).batch(4)
    stats = InputStats.from_dataset(ds)
    assert stats.samples == 20 and np.allclose(stats.mean, x.mean(0))


def test_roc_auc_and_threshold():
    scores = np.array([0.01, 0.02, 0.03, 0.04])
    truth = np.array([0, 0, 1, 1])
    assert roc_auc(scores, truth) == 1.0
    cut, balanced = best_threshold(scores, truth)
    assert cut == 0.03 and balanced == 1.0


@pytest.mark.parametrize("case", ["relu_huge", "sigmoid_flat", "edges", "hard_sigmoid_edges", "rank1", "sequence_gates",
                                  "nan_and_inf", "empty"])
def test_the_probes_lean_summary_agrees_with_the_full_one(case):
    """The probe summarizes each layer with ``lean_summary`` (a third of the graph, NaN-free values) and falls back
    to ``tensor_summary`` for NaN / Inf: either way a user sees the same numbers."""
    from whyzero.probes.traced import summarize

    rng = np.random.default_rng(3)
    lo = hi = gates = None
    if case == "relu_huge":
        x = np.maximum(rng.normal(0.3, 1.0, size=(4, 96, 96, 32)), 0)
    elif case == "sigmoid_flat":
        x = 1 / (1 + np.exp(-rng.normal(0, 8, size=(3, 20, 16))))
        lo, hi = 1 / (1 + np.exp(5)), 1 / (1 + np.exp(-5))
    elif case in ("edges", "hard_sigmoid_edges"):  # the values where a count's test changes, and their neighbours
        lo, hi = (0.0, 1.0) if case == "hard_sigmoid_edges" else (1 / (1 + np.exp(5)), 1 / (1 + np.exp(-5)))
        f32 = np.float32
        edges = [f32(v) for v in (0.0, -0.0, 1.0, lo, hi, -lo, 2.0, -3.0)]
        near = [np.nextafter(v, f32(t)) for v in edges for t in (-np.inf, np.inf)]
        near += [np.nextafter(v, f32(t)) for v in near for t in (-np.inf, np.inf)]
        x = np.array(edges + near, np.float32).reshape(1, -1)
        x = np.where((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny), 0, x)  # no denormals: flushed to 0
    elif case == "rank1":
        x = rng.uniform(size=(9,))
    elif case == "sequence_gates":
        x = rng.normal(size=(5, 12, 8))
        gates = tf.constant(rng.normal(0, 6, size=(5, 12, 32)).astype(np.float32))
    elif case == "nan_and_inf":
        x = rng.normal(size=(3, 4, 5))
        x[0, 1, 2], x[2, 0, 0] = np.nan, np.inf
    else:
        x = np.zeros((0, 4))
    x = tf.constant(np.asarray(x, np.float32))
    full, lean = ValueSummary(), ValueSummary()
    full.update({k: v.numpy() for k, v in tensor_summary(x, lo, hi, gates).items()})
    lean.update(summarize(x, lo, hi, gates))
    for name in full.__dataclass_fields__:
        expected, got = (np.asarray(getattr(s, name), np.float64) for s in (full, lean))
        assert expected.shape == got.shape, name
        assert np.allclose(got, expected, rtol=1e-6, atol=1e-9, equal_nan=True), name
    if case == "sigmoid_flat":
        assert lean.flat > 0
    if case in ("edges", "hard_sigmoid_edges"):
        values = x.numpy()
        assert (lean.zero, lean.negative) == (np.sum(values == 0), np.sum(values < 0))
        assert lean.one == np.sum(np.abs(values - np.float32(1)) <= np.float32(1.2e-7)) > 1
        assert lean.flat == np.sum((values <= np.float32(lo)) | (values >= np.float32(hi)))
    if case == "sequence_gates":
        assert lean.gate_flat > 0
    if case == "nan_and_inf":
        assert (lean.nan, lean.inf) == (1, 1)


def test_the_pass_summarizes_every_layer_in_its_graph_and_falls_back_on_nan_and_inf():
    """The probe summarizes each layer inside its pass; a chunk where a layer's values are not all finite is
    summarized again from the outputs themselves.  Either way the numbers equal numpy's on the whole batch, and the
    gradient summed over chunks equals the batch's."""
    import keras

    from whyzero.probes.forward import run_forward

    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, activation="relu", name="hidden")(inputs)
    out = keras.layers.Dense(2, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, out)
    kernel = model.get_layer("hidden").kernel
    kernel.assign(np.abs(kernel.numpy()) + 0.1)  # positive weights: an Inf input stays Inf through the ReLU
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    x[7, 0] = np.inf  # chunk 2 of 3 (chunks of 4): 'hidden' gets Inf there
    labels = np.arange(10) % 2
    loss = keras.losses.SparseCategoricalCrossentropy()
    result = run_forward(model, x, labels, loss, chunk_size=4)
    kernel, bias = (w.numpy() for w in model.get_layer("hidden").weights)
    with np.errstate(invalid="ignore", over="ignore"):
        values = np.maximum(x @ kernel + bias, 0)
    hidden_probe = next(p for p in result.layers if p.name == "hidden")
    summary = hidden_probe.values
    assert summary.n == values.size and summary.nan == int(np.isnan(values).sum())
    assert summary.inf == int(np.isinf(values).sum()) and summary.nan + summary.inf > 0
    finite = values[np.isfinite(values)]
    assert summary.sum == pytest.approx(float(finite.sum()), rel=1e-5)
    assert summary.zero == int((values == 0).sum())
    clean = x[np.isfinite(x).all(axis=1)]
    keep = np.isfinite(x).all(axis=1)
    # the gradient of the mean loss over the finite samples, summed over chunks, as one pass over them gives
    result = run_forward(model, clean, labels[keep], loss, chunk_size=4)
    with tf.GradientTape() as tape:
        whole = tf.reduce_mean(loss(labels[keep], model(clean)))
    expected = tape.gradient(whole, model.get_layer("out").kernel)
    out_probe = next(p for p in result.layers if p.name == "out")
    assert out_probe.grad_sumsq == pytest.approx(float(np.sum(expected.numpy().astype(np.float64) ** 2)), rel=1e-4)


def test_the_pass_counts_a_huge_layer_on_one_budget_shared_by_its_chunks():
    """A layer far past COUNT_MAX_VALUES, streamed in chunks (the last one smaller): its shares come from a
    subsample the chunks share (within a fraction of a percent of numpy's on the whole batch, a few percent per
    sample), its moments and per-unit maxima stay exact."""
    import keras

    from whyzero.probes.forward import run_forward
    from whyzero.probes.summary import COUNT_MAX_VALUES, SAMPLE_COUNT_MIN

    keras.utils.set_random_seed(0)
    inputs = keras.Input((48, 48, 3))
    conv = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv")(inputs)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(conv))
    model = keras.Model(inputs, out)
    x = np.random.default_rng(4).normal(size=(26, 48, 48, 3)).astype(np.float32)
    values = keras.Model(inputs, conv).predict(x, verbose=0).astype(np.float64)
    assert values.size > 20 * COUNT_MAX_VALUES and 0.2 < np.mean(values == 0) < 0.8
    probe = next(p for p in run_forward(model, x, None, None, chunk_size=4).layers if p.name == "conv").values
    assert probe.n == values.size and probe.n_samples == 26
    assert probe.share("zero") == pytest.approx(np.mean(values == 0), abs=0.005)
    # each sample's share from its ~2^11 counted values: within 4 standard errors of a share near 1/2
    per_sample_error = np.sqrt(0.25 / SAMPLE_COUNT_MIN)
    assert np.allclose(probe.sample_zero, np.mean(values.reshape(26, -1) == 0, axis=1), atol=4 * per_sample_error)
    assert probe.mean == pytest.approx(values.mean(), rel=1e-5)
    assert probe.rms == pytest.approx(np.sqrt(np.mean(values ** 2)), rel=1e-5)
    assert np.allclose(probe.unit_max, values.max(axis=(0, 1, 2)), rtol=1e-6)
    assert probe.hist.sum() == pytest.approx(values.size, rel=0.01)


def test_a_layer_whose_sample_shape_is_known_only_when_it_runs_is_summarized_in_the_pass_too():
    """A layer whose output's sample shape the trace cannot know (a reshape to a shape computed in the graph) has no
    fixed layout for the lean summary: the pass summarizes it with the full one, and the numbers are numpy's."""
    import keras

    from whyzero.probes.forward import run_forward

    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    flat = keras.layers.Lambda(lambda t: tf.reshape(t, tf.stack([tf.shape(t)[0], -1])), output_shape=(8,),
                               name="dynamic")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(flat))
    x = np.random.default_rng(5).normal(size=(10, 6)).astype(np.float32)
    values = keras.Model(inputs, hidden).predict(x, verbose=0).astype(np.float64)
    result = run_forward(model, x, np.arange(10) % 3, keras.losses.SparseCategoricalCrossentropy(), chunk_size=4)
    dynamic = next(p for p in result.layers if p.name == "dynamic").values
    assert (dynamic.n, dynamic.n_samples, dynamic.zero) == (values.size, 10, int(np.sum(values == 0)))
    assert dynamic.mean == pytest.approx(values.mean(), rel=1e-5) and dynamic.one == 0
    assert np.allclose(dynamic.unit_max, values.max(axis=0), rtol=1e-6)


@pytest.mark.parametrize("shape", [(6, 40, 40, 8), (30, 5)])
def test_batchnorm_input_statistics_stay_exact_far_from_zero(shape):
    """What a BatchNormalization layer receives (per channel: count, sum, sum of squares) is summed in float32
    around each sample's own mean and combined in float64: a thousand standard deviations from 0, the mean and the
    variance still match numpy's float64 ones."""
    from whyzero.probes.traced import bn_stats

    rng = np.random.default_rng(6)
    x = (1000.0 + rng.normal(size=shape) * np.linspace(0.5, 2.0, shape[-1])).astype(np.float32)
    count, total, squares = (np.asarray(v, np.float64) for v in bn_stats(tf.constant(x)))
    flat = x.astype(np.float64).reshape(-1, shape[-1])
    assert count == len(flat)
    assert np.allclose(total / count, flat.mean(0), rtol=1e-6)
    assert np.allclose(squares / count - (total / count) ** 2, flat.var(0), rtol=1e-4)


@pytest.mark.parametrize("batch", [32, 512])
def test_the_count_subsample_keeps_a_budget_per_batch_and_enough_values_per_sample(batch):
    """MobileNetV2's widest layer in chunks of 7: the chunks of a batch share about COUNT_MAX_VALUES counted values,
    and every sample keeps about SAMPLE_COUNT_MIN of its own at least (its shares feed the per-sample drill-down)."""
    from whyzero.probes.summary import COUNT_MAX_VALUES, SAMPLE_COUNT_MIN, Layout

    layout = Layout.of((7, 112, 112, 96), samples=7, batch=batch)
    assert layout.group == 16 and layout.values % layout.group == 0
    assert layout.width >= 0.9 * SAMPLE_COUNT_MIN  # the stride rounds up to a prime
    assert layout.width * batch <= 1.1 * max(COUNT_MAX_VALUES, batch * SAMPLE_COUNT_MIN)


@pytest.mark.parametrize("case", ["normal", "vanishing", "exploding", "nan_and_inf", "zeros", "empty", "float16"])
def test_gradient_statistics_match_float64_from_vanishing_to_exploding(case):
    """A kernel's gradient: its non-finite values, nonzero values and sum of squares as numpy gives them in
    float64, where float32 squares would underflow (1e-25) or overflow (1e25)."""
    from whyzero.probes.gradients import _gradient_stats

    rng = np.random.default_rng(3)
    values = {"normal": rng.normal(size=(3, 3, 64, 64)), "vanishing": rng.normal(size=(256, 64)) * 1e-25,
              "exploding": rng.normal(size=(256, 64)) * 1e25, "nan_and_inf": np.array([1.5, np.nan, np.inf, 0, -2]),
              "zeros": np.zeros((8, 8)), "empty": np.zeros((0, 4)), "float16": rng.normal(size=(32, 8))}[case]
    values = values.astype(np.float16 if case == "float16" else np.float32)
    exact = values.astype(np.float64).ravel()
    finite = np.isfinite(exact)
    clean = np.where(finite, exact, 0.0)
    nonfinite, nonzero, sumsq = _gradient_stats(values)
    assert (nonfinite, nonzero) == (int((~finite).sum()), int(np.count_nonzero(clean)))
    assert sumsq == pytest.approx(float(np.dot(clean, clean)), rel=1e-5, abs=0.0)
    assert (sumsq > 0) == bool(np.count_nonzero(clean))


def _small_models(kind: str):
    """A small model and its batch (over several chunks), rebuilt with the same names and weights each call."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    layers, rng = keras.layers, np.random.default_rng(0)
    masks = None
    if kind == "mlp":  # same-shaped layers with and without a flat region: stacked in two groups
        inputs = keras.Input((20,))
        x = inputs
        for activation in ("relu", "relu", "sigmoid", "relu", "sigmoid"):
            x = layers.Dense(16, activation=activation)(x)
        model = keras.Model(inputs, layers.Dense(3, activation="softmax")(x))
        batch, labels = rng.normal(size=(37, 20)).astype(np.float32), np.arange(37) % 3
    elif kind == "cnn":  # Grad-CAM and BatchNorm memory come from the pass too
        model = keras.Sequential([keras.Input((16, 16, 3)), layers.Conv2D(8, 3, activation="relu"),
                                  layers.BatchNormalization(), layers.Conv2D(8, 3, activation="relu"),
                                  layers.GlobalAveragePooling2D(), layers.Dense(4, activation="softmax")])
        batch, labels = rng.uniform(size=(37, 16, 16, 3)).astype(np.float32), np.arange(37) % 4
    else:  # a segmenter, with masks
        inputs = keras.Input((16, 16, 3))
        hidden = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
        model = keras.Model(inputs, layers.Conv2D(3, 1, activation="softmax")(hidden))
        batch, labels = rng.uniform(size=(21, 16, 16, 3)).astype(np.float32), None
        masks = rng.integers(0, 3, (21, 16, 16))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model, batch, labels, masks


@pytest.mark.parametrize("kind", ["mlp", "cnn", "segmenter"])
def test_a_small_model_probed_op_by_op_gets_the_diagnosis_its_traced_pass_gives(kind, monkeypatch):
    """A small model's pass runs eagerly (no trace, no graph to set up: the deep MLP's diagnosis in 0.24 s instead
    of 0.33 s); a user sees the same numbers either way, Grad-CAM maps, BatchNorm inputs and gradients included."""
    import json

    import whyzero
    import whyzero.engine
    import whyzero.probes.forward as forward

    monkeypatch.setenv("WHYZERO_CHUNK_SIZE", "16")  # three chunks, the last one smaller
    modes = []
    real = forward.run_forward

    def spy(*args, **kwargs):
        modes.append(kwargs.get("eager"))
        return real(*args, **kwargs)

    monkeypatch.setattr(whyzero.engine, "run_forward", spy)
    documents = []
    for limit in (0, forward.EAGER_MAX_BYTES):
        monkeypatch.setattr(forward, "EAGER_MAX_BYTES", limit)
        model, batch, labels, masks = _small_models(kind)
        diagnosis = whyzero.diagnose(model, batch, labels=labels, masks=masks)
        documents.append((json.dumps(diagnosis.summaries, sort_keys=True), [f.cause for f in diagnosis.findings]))
    assert modes == [False, True]
    assert documents[0] == documents[1]
    summaries = json.loads(documents[1][0])
    assert summaries["activations"] and summaries["gradients"]["rows"]
    if kind == "cnn":
        assert summaries["samples"]["saliency"]


def test_small_same_shaped_layers_are_summarized_by_one_call_with_the_numbers_of_one_call_each(monkeypatch):
    """Layers whose small outputs share a layout and a flat region are stacked along the batch and summarized by
    one call (each call costs ~1 ms when the pass first runs); every layer keeps its own numbers, histogram
    included, over chunks of unequal size."""
    import keras

    import whyzero.probes.forward as forward
    import whyzero.probes.traced as traced

    model, batch, labels, _ = _small_models("mlp")
    loss = keras.losses.SparseCategoricalCrossentropy()
    calls = []
    real = forward.stacks

    def spy(*args):
        calls.append(real(*args))
        return calls[-1]

    monkeypatch.setattr(forward, "stacks", spy)
    stacked = forward.run_forward(model, batch, labels, loss, chunk_size=16)
    assert sorted(len(group) for group in calls[0]) == [1, 2, 3]  # ReLU x3, sigmoid x2, softmax
    monkeypatch.setattr(traced, "STACK_MAX_BYTES", 0)
    model, batch, labels, _ = _small_models("mlp")
    alone = forward.run_forward(model, batch, labels, loss, chunk_size=16)
    assert all(len(group) == 1 for group in calls[-1])
    assert [p.name for p in stacked.layers] == [p.name for p in alone.layers]
    for got, expected in zip(stacked.layers, alone.layers):
        for name in expected.values.__dataclass_fields__:
            a, b = (np.asarray(getattr(p.values, name), np.float64) for p in (got, expected))
            assert np.allclose(a, b, rtol=1e-6, atol=1e-9), (got.name, name)
        assert got.values.hist.sum() > 0 and got.values.n_samples == 37


def test_the_probe_runs_eagerly_only_for_small_activations_without_a_recurrent_layer():
    import keras

    from whyzero.prepare import activation_bytes
    from whyzero.probes.forward import EAGER_MAX_BYTES, runs_eagerly

    model, batch, _, _ = _small_models("mlp")
    per_sample = activation_bytes(model, exact=True)
    assert per_sample == (5 * 16 + 3) * 4  # five hidden layers of 16 and the head (the input layer holds none)
    assert runs_eagerly(model, per_sample * len(batch))
    assert not runs_eagerly(model, EAGER_MAX_BYTES + 1)
    recurrent = keras.Sequential([keras.Input((10, 4)), keras.layers.LSTM(8), keras.layers.Dense(1)])
    assert not runs_eagerly(recurrent, 1000)
    ragged = keras.Sequential([keras.Input((None, 4)), keras.layers.Dense(8)])
    assert activation_bytes(ragged, exact=True) is None and activation_bytes(ragged) == 8 * 4


def test_a_small_model_with_a_layer_that_runs_only_in_a_graph_falls_back_to_the_traced_pass():
    """A small model is probed op by op; a custom layer that works only inside a ``tf.function`` fails there, and
    the pass is traced instead: the diagnosis keeps its gradients and says nothing went missing."""
    import keras

    import whyzero

    class GraphOnly(keras.layers.Layer):
        def call(self, x):
            if tf.executing_eagerly():
                raise RuntimeError("this layer runs only inside a tf.function")
            return x * 2.0

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="hidden"),
                              GraphOnly(name="graph_only"), keras.layers.Dense(3, activation="softmax", name="out")])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    with pytest.raises(RuntimeError, match="only inside"):
        model(x)  # eagerly it fails
    d = whyzero.diagnose(model, x, labels=np.arange(20) % 3)
    assert not any("gradients unavailable" in note for note in d.notes)
    rows = {r["layer"]: r for r in d.summaries["gradients"]["rows"]}
    assert rows["hidden"]["grad_norm"] > 0 and rows["out"]["grad_norm"] > 0
    doubled = next(r for r in d.summaries["activations"] if r["layer"] == "graph_only")
    hidden = next(r for r in d.summaries["activations"] if r["layer"] == "hidden")
    assert doubled["max"] == pytest.approx(2 * hidden["max"], rel=1e-6)


@pytest.mark.parametrize("eager", [False, True])
def test_a_relu_summarized_from_its_input_gives_the_numbers_it_gives_read_itself(eager, monkeypatch):
    """A ReLU of a layer's output (a BatchNorm's, a residual sum's) reads two statistics of its own and takes the
    rest from its input's summary (``clipped_summary``); every number a user sees is the one reading it whole gives,
    values beyond the ceiling, exact zeros and a chunk with NaN included."""
    import keras

    from whyzero.probes import forward
    from whyzero.probes.forward import run_forward

    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    conv = keras.layers.Conv2D(16, 3, padding="same", name="conv")(inputs)
    norm = keras.layers.BatchNormalization(gamma_initializer=keras.initializers.Constant(4.0), name="norm")(conv)
    relu6 = keras.layers.ReLU(max_value=6.0, name="relu6")(norm)
    summed = keras.layers.Add(name="add")([relu6, keras.layers.Conv2D(16, 1, name="skip")(inputs)])
    relu = keras.layers.Activation("relu", name="relu")(summed)
    capped = keras.layers.ReLU(max_value=1.0, name="relu1")(summed)  # a ceiling of 1: read itself
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Concatenate()([relu, capped]))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    x = np.random.default_rng(5).normal(size=(20, 64, 64, 3)).astype(np.float32)
    x[3:5, :, :32] = 0  # whole regions of exact zeros
    x[12, 5, 5, 0] = np.nan  # the second chunk of three: read from its outputs themselves
    labels = np.arange(20) % 2
    loss = keras.losses.SparseCategoricalCrossentropy()
    derived = []
    real = forward.clipped_vector
    monkeypatch.setattr(forward, "clipped_vector", lambda t, *a, **k: derived.append(t.shape) or real(t, *a, **k))
    clipped = {p.name: p.values for p in run_forward(model, x, labels, loss, chunk_size=8, eager=eager).layers}
    assert len(derived) == 2 * (3 if eager else 1)  # relu6 and relu, traced once or run per chunk; relu1 read itself
    monkeypatch.setattr(forward, "relu_ceiling", lambda layer: None)
    read = {p.name: p.values for p in run_forward(model, x, labels, loss, chunk_size=8, eager=eager).layers}
    assert clipped["relu6"].max == 6.0 and clipped["relu6"].min == 0.0 and clipped["relu6"].nan > 0
    assert 0.2 < clipped["relu6"].share("zero") < 0.8 and np.mean(clipped["relu6"].unit_max == 6.0) > 0.5
    for name in ("relu6", "relu", "relu1", "norm", "add"):
        for field_name in read[name].__dataclass_fields__:
            expected, got = (np.asarray(getattr(s[name], field_name), np.float64) for s in (read, clipped))
            assert np.array_equal(got, expected, equal_nan=True), (name, field_name)
