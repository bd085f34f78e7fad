"""The model's memory of its training inputs: an adapted Normalization layer and the preprocessing what-if."""

import keras
import numpy as np
import pytest

import whyzero
from whyzero.gallery import data
from whyzero.preprocessing import PREPROCESSINGS, recover_raw


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


def test_a_fine_tuned_base_keeps_the_batchnorm_memory_it_was_pretrained_with():
    """A base pretrained for hundreds of steps, then fine-tuned a few under a new optimizer: the optimizer's step
    count says nothing of how long its BatchNorm memory was trained.  The batch matches that memory as it is, so no
    correction is applied and no alarm raised; the same digits fed unscaled (0..16) still are named."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x, y = (raw.images / 16.0)[..., None].astype("float32"), raw.target
    keras.utils.set_random_seed(0)
    layers = keras.layers
    base = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(16, 3, activation="relu"),
                             layers.BatchNormalization(name="bn"), layers.Conv2D(32, 3, activation="relu"),
                             layers.GlobalAveragePooling2D()], name="base")
    pretrain = keras.Sequential([base, layers.Dense(10, activation="softmax")])
    pretrain.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    pretrain.fit(x[:1500], y[:1500], epochs=10, verbose=0)
    model = pretrain
    model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy")  # a new optimizer
    model.fit(x[:1500], y[:1500], epochs=2, verbose=0)  # ~94 steps: 1 - 0.99**94 = 61% "converged"
    assert int(model.optimizer.iterations) < 100
    batch, labels = x[1500:1750], y[1500:1750]
    assert np.mean(model.predict(batch, verbose=0).argmax(1) == labels) > 0.75
    d = whyzero.diagnose(model, batch, labels=labels)
    assert d.is_clean, [(f.cause, f.severity, f.title) for f in d.findings]
    bn = next(r for r in d.summaries["inputs"]["batchnorm"] if r["layer"].endswith("bn"))
    assert bn["converged"] == 1.0 and bn["z_median"] < 0.5
    unscaled = whyzero.diagnose(model, batch * 16, labels=labels)
    assert unscaled.findings[0].cause == "input.range_mismatch"


def test_a_big_model_is_probed_at_least_eight_samples_a_chunk_where_they_fit_twice_the_budget(monkeypatch):
    from whyzero.prepare import activation_bytes, chunk_size

    inputs = keras.Input((64, 64, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(16, 3, padding="same")(inputs))
    batch = np.zeros((32, 64, 64, 3), np.float32)
    per_sample_mb = activation_bytes(model) / 2**20  # 0.25 MB: 16 channels of 64x64 in float32
    monkeypatch.setenv("WHYZERO_CHUNK_MB", str(per_sample_mb * 20))
    assert chunk_size(model, batch) == 20  # as many as fit
    monkeypatch.setenv("WHYZERO_CHUNK_MB", str(per_sample_mb * 5))
    assert chunk_size(model, batch) == 8  # 5 fit, 8 fit twice the budget
    monkeypatch.setenv("WHYZERO_CHUNK_MB", str(per_sample_mb * 3))
    assert chunk_size(model, batch) == 3  # 8 would hold more than twice the budget


def test_the_whatif_worked_out_beside_the_traced_pass_is_the_one_worked_out_after_it(monkeypatch):
    """The batch's statistics are worked out on a second thread while the probe's pass is traced, the weights'
    table and the what-if's memory scores on it once the pass is traced: the diagnosis names the same preprocessing
    with the same scores and the same input statistics as when they are worked out after the pass, and a failure on
    that thread leaves them to be worked out after it."""
    import threading

    from whyzero import early, engine, memory
    from whyzero import fed as fed_module
    from whyzero.probes import forward

    layers = keras.layers
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32, 32, 3)), layers.Conv2D(8, 3, name="conv"),
                              layers.BatchNormalization(name="bn"), layers.ReLU(), layers.GlobalAveragePooling2D(),
                              layers.Dense(3, activation="softmax")])
    pixels = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3)).astype(np.float32)
    conv = model.get_layer("conv")(pixels / 255.0).numpy().reshape(-1, 8)  # trained on x / 255: its memory
    model.get_layer("bn").moving_mean.assign(conv.mean(0))
    model.get_layer("bn").moving_variance.assign(conv.var(0))

    threads, stats_threads, real_stats, events = [], [], fed_module.batch_stats, []

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread().name)
        events.append("scores")
        return memory.memory_scores(*args, **kwargs)

    def compiled(*args, **kwargs):
        out = real_compile(*args, **kwargs)
        events.append("traced")
        return out

    def stats_recorded(batch):
        stats_threads.append(threading.current_thread().name)
        return real_stats(batch)

    real_compile = forward._compile_pass
    monkeypatch.setattr(early, "memory_scores", recorded)
    monkeypatch.setattr(fed_module, "batch_stats", stats_recorded)
    monkeypatch.setattr(forward, "_compile_pass", compiled)
    beside = engine.diagnose_fed(engine.prepare(model, pixels), lambda stage, fraction: None, traced=True)  # raw
    assert threads and threads[0].startswith("whyzero-early")
    assert events[:2] == ["traced", "scores"]  # the scores wait for the trace: beside it they slowed it
    assert len(stats_threads) == 1 and stats_threads[0].startswith("whyzero-early")

    def fails(*args, **kwargs):
        raise RuntimeError("the thread failed")

    def stats_fail_on_the_thread(batch):
        if threading.current_thread().name.startswith("whyzero-early"):
            raise RuntimeError("the thread failed")
        return stats_recorded(batch)

    monkeypatch.setattr(early, "memory_scores", fails)
    monkeypatch.setattr(fed_module, "batch_stats", stats_fail_on_the_thread)
    stats_threads.clear()
    after = engine.diagnose_fed(engine.prepare(model, pixels), lambda stage, fraction: None, traced=True)
    assert stats_threads == ["MainThread"]  # worked out after the pass, once
    for d in (beside, after):
        assert d.findings[0].cause == "input.range_mismatch"
        assert d.summaries["inputs"]["whatif"]["best"] == "unit"
    scores = [{c["name"]: c["score"] for c in d.summaries["inputs"]["whatif"]["candidates"]} for d in (beside, after)]
    assert scores[0] == pytest.approx(scores[1], rel=1e-6)
    assert scores[0]["unit"] < 0.2 * scores[0]["as given"]
    stats = [d.summaries["measurements"]["input_stats"] for d in (beside, after)]
    assert stats[0]["max"] == [255.0, 255.0, 255.0] and stats[0] == stats[1]
    assert beside.summaries["measurements"]["memory"]["weights"] == after.summaries["measurements"]["memory"]["weights"]
