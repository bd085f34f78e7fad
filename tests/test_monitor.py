"""whyzero.Monitor on real training: a run that goes flat part-way has its cause named at the epoch it appeared, a
healthy run stays clean at every epoch, a killed run reads back every epoch written, and the timeline CLI says so."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import whyzero
from whyzero.diagnosis import Diagnosis
from whyzero.errors import WhyzeroError
from whyzero.gallery import recipes
from whyzero.measurements import decode_array
from whyzero.timeline import FILE_NAME, Timeline


def serious(entry):
    return [f for f in entry["findings"] if f["severity"] != "info"]


def outputs_of(entry):
    return decode_array(entry["diagnosis"]["summaries"]["measurements"]["outputs"])


@pytest.fixture(scope="module")
def spike_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("spike")
    monitor = recipes.train("binary_lr_spike", str(run))
    return monitor, Timeline.read(run)


def test_a_run_that_goes_flat_has_its_cause_named_at_the_epoch_it_appeared(spike_run):
    monitor, timeline = spike_run
    assert [e["epoch"] for e in timeline.epochs] == list(range(6))
    # the symptom first: varied predictions before the spike, one constant prediction from epoch 3 on
    for entry in timeline.epochs[:3]:
        assert np.ptp(outputs_of(entry)) > 0.3
        assert serious(entry) == []
    for entry in timeline.epochs[3:]:
        assert np.ptp(outputs_of(entry)) < 1e-3
    spike = timeline.epochs[3]
    first = spike["findings"][0]
    assert (first["cause"], first["severity"], first["role"]) == ("training.learning_rate_high", "critical", "root")
    assert "activation.dead_relu" in first["explains"]
    # the update was measured, not estimated: the weights' own change over the epoch's steps
    evidence = Diagnosis.from_dict(spike["diagnosis"]).findings[0].evidence
    assert evidence["measured_over_steps"] > 50 and evidence["median_change_per_step"] > 1.0
    span = next(s for s in timeline.spans() if s.cause == "training.learning_rate_high")
    assert span.appeared == 3 and span.role == "root"
    assert timeline.first_root()[0] == 3
    # the loss the fit reported, and the probe's against the prior's entropy
    assert spike["logs"]["loss"] > 100 * timeline.epochs[2]["logs"]["loss"]
    assert timeline.epochs[2]["loss"] < timeline.epochs[2]["prior_entropy"] < timeline.epochs[5]["loss"]
    names, rows = timeline.layer_matrix("dead")
    assert names[:2] == ["dense1", "dense2"] and rows[0][2] < 0.5 < rows[0][3]


def test_the_traced_probe_is_built_once_for_the_whole_run(spike_run):
    monitor, _ = spike_run
    assert len(monitor._fed.loaded.passes) == 1  # one compiled pass, reused by every epoch and proof


def test_what_depends_on_the_probe_batch_alone_is_written_once(spike_run):
    monitor, timeline = spike_run
    lines = [json.loads(line) for line in monitor.path.read_text().splitlines()]
    assert "format" in lines[0] and "shared" in lines[1] and [r["epoch"] for r in lines[2:]] == list(range(6))
    shared = lines[1]["shared"]["summaries"]
    assert shared["inputs"]["hist"] and shared["measurements"]["input_stats"]
    for raw in lines[2:]:  # each line leaves the batch's histograms out; its diagnosis reads back whole
        assert "hist" not in raw["diagnosis"]["summaries"]["inputs"]
    sizes = [len(line) for line in monitor.path.read_text().splitlines()]
    assert max(sizes[2:]) < 0.5 * (sizes[1] + min(sizes[2:]))  # the shared parts were most of each line
    for i in range(len(timeline.epochs)):
        d = Diagnosis.from_dict(timeline.diagnosis(i))
        assert d.summaries["inputs"]["hist"] == shared["inputs"]["hist"]
        assert d.summaries["measurements"]["input_stats"] == shared["measurements"]["input_stats"]
        assert "outputs" in d.summaries["measurements"]  # what changes stays in each line


def test_a_healthy_run_stays_clean_at_every_epoch(tmp_path):
    recipes.train("binary_healthy", str(tmp_path))
    timeline = Timeline.read(tmp_path)
    assert len(timeline.epochs) == 6
    for entry in timeline.epochs:
        assert serious(entry) == [], (entry["epoch"], serious(entry))
    assert timeline.epochs[-1]["loss"] < 0.5 * timeline.epochs[-1]["prior_entropy"]
    assert timeline.first_root() is None


def test_weights_that_do_not_move_are_measured_at_every_epoch(tmp_path):
    recipes.train("binary_lr_tiny", str(tmp_path))
    timeline = Timeline.read(tmp_path)
    for entry in timeline.epochs:
        first = entry["findings"][0]
        assert (first["cause"], first["severity"], first["role"]) == ("training.learning_rate_low", "critical",
                                                                      "root")
        assert all(row["update"] < 1e-7 for row in entry["layers"].values() if row["update"] is not None)


def test_stop_on_critical_ends_training_at_the_epoch_the_cause_is_established(tmp_path):
    monitor = recipes.train("binary_lr_spike", str(tmp_path), stop_on="critical")
    timeline = Timeline.read(tmp_path)
    assert monitor.stopped_at == 3
    assert [e["epoch"] for e in timeline.epochs] == [0, 1, 2, 3]
    assert timeline.epochs[-1]["stopped"] is True


def test_a_custom_training_loop_observes_every_n_steps(tmp_path):
    import keras
    import tensorflow as tf

    from whyzero.gallery.cases import _binary_digits
    from whyzero.gallery.models import mlp, seed

    seed(0)
    x, y = _binary_digits()
    model = mlp(64, (32, 16), name="custom_loop")
    optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer, "binary_crossentropy")
    loss_fn = keras.losses.BinaryCrossentropy()
    monitor = whyzero.Monitor(probe=(x[:64], y[:64]), run=str(tmp_path / "loop.jsonl"))
    for step in range(1, 41):
        i = (step * 32) % (len(x) - 32)
        with tf.GradientTape() as tape:
            loss = loss_fn(y[i:i + 32, None].astype("float32"), model(x[i:i + 32], training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        if step % 20 == 0:
            found = monitor.observe(model, step, logs={"loss": float(loss)})
            assert [f for f in found if f["severity"] != "info"] == []
    timeline = Timeline.read(tmp_path / "loop.jsonl")
    assert [e["step"] for e in timeline.epochs] == [20, 40]
    assert timeline.epochs[1]["diagnosis"]["summaries"]["measurements"]["live"]["steps"] == 20
    assert all(row["update"] > 0 for row in timeline.epochs[1]["layers"].values() if row["update"] is not None)


KILLED = textwrap.dedent("""
    import sys, keras, whyzero
    from whyzero.gallery.cases import _binary_digits
    from whyzero.gallery.models import mlp
    x, y = _binary_digits()
    model = mlp(64, (32, 16))
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    model.fit(x, y, epochs=1000, batch_size=64, verbose=0,
              callbacks=[whyzero.Monitor(probe=(x[:64], y[:64]), run=sys.argv[1])])
""")


def test_a_killed_run_reads_back_every_epoch_written(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path)], env=env, stderr=subprocess.DEVNULL)
    path = tmp_path / FILE_NAME
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists() and path.read_text().count("\n") >= 4:  # a header and three epochs at least
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    written = [line for line in path.read_text().splitlines() if line.strip()]
    assert len(written) >= 4
    timeline = Timeline.read(tmp_path)
    assert [e["epoch"] for e in timeline.epochs] == list(range(len(timeline.epochs)))
    assert len(timeline.epochs) >= len(written) - 2  # every whole line; at most the one being written is torn
    # a line torn mid-write, as a kill during the append leaves it, is left out and said
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"epoch": 99, "findings": [')
    torn = Timeline.read(tmp_path)
    assert len(torn.epochs) == len(timeline.epochs)
    assert "cut short" in torn.notes[0]


def test_a_file_that_is_not_a_run_gets_a_one_line_reason(tmp_path):
    with pytest.raises(WhyzeroError, match="No whyzero run"):
        Timeline.read(tmp_path)
    (tmp_path / FILE_NAME).write_text('{"format": "other"}\n')
    with pytest.raises(WhyzeroError, match="Expected a whyzero run"):
        Timeline.read(tmp_path)
    with pytest.raises(WhyzeroError, match="every='epoch'"):
        whyzero.Monitor(probe=np.zeros((4, 3)), every=0)


def test_the_timeline_cli_says_when_the_cause_appeared(spike_run, tmp_path):
    monitor, _ = spike_run
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "whyzero.cli", "timeline", str(monitor.path), "--json",
                             str(tmp_path / "t.json"), "--epoch", "3", "--diagnosis", str(tmp_path / "d.json")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "root cause established at epoch 3: training.learning_rate_high" in result.stdout
    assert "epoch 3 -> gone at epoch 4" in result.stdout or "epoch 3 -> still at epoch 5" in result.stdout
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["spans"][0]["cause"] == "training.learning_rate_high" and data["spans"][0]["appeared"] == 3
    assert "diagnosis" not in data["epochs"][0]
    d = Diagnosis.from_dict(json.loads((tmp_path / "d.json").read_text()))
    assert d.findings[0].cause == "training.learning_rate_high"


def test_the_shipped_demo_run_is_the_recipes_run(spike_run):
    from whyzero.demo import shipped_timeline

    _, live = spike_run
    shipped = Timeline.parse(shipped_timeline())
    assert [(s.cause, s.appeared, s.gone, s.role) for s in shipped.spans()] == \
        [(s.cause, s.appeared, s.gone, s.role) for s in live.spans()]


def test_the_timeline_page_opens_a_run_and_shows_each_epoch_on_every_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    from test_app import APP, page_text

    monkeypatch.setenv("WHYZERO_STORE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/timeline.py").run()
    assert "finished model, not of a training run" in page_text(at)
    at.button[1].click().run()  # the demo run
    assert not at.exception
    assert "Root cause established at epoch 3:" in page_text(at)
    assert len(at.get("plotly_chart")) == 6
    assert at.session_state["diagnosis"].summaries["timeline"]["current"] == 5  # the last epoch first
    at.select_slider[0].set_value(1).run()
    assert at.session_state["diagnosis"].summaries["timeline"]["current"] == 1
    assert not [f for f in at.session_state["diagnosis"].findings if f.severity != "info"]
    at.switch_page("app_pages/overview.py").run()
    assert "No critical or warning finding" in page_text(at)
    at.switch_page("app_pages/timeline.py").run()  # the chosen epoch stays chosen on the way back
    assert at.select_slider[0].value == 1


def test_a_run_is_kept_shared_and_compared_like_a_diagnosis(spike_run, tmp_path):
    from whyzero.compare import difference
    from whyzero.store import Store
    from whyzero.timeline import epoch_diagnosis, timeline_of

    _, timeline = spike_run
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    before, after = epoch_diagnosis(timeline, 2), epoch_diagnosis(timeline, 3)
    run_id, _ = store.save_run(after, "run: digits_mlp")
    token, _ = store.save(store.load_run(run_id).diagnosis, run_id=run_id)
    shared = store.load(token).diagnosis
    reread, index = timeline_of(shared)
    assert index == 3 and len(reread.epochs) == 6
    assert [s.cause for s in reread.spans()] == [s.cause for s in timeline.spans()]
    assert shared.findings[0].cause == "training.learning_rate_high"
    # an epoch against the one before it, as Compare shows them: the cause appeared between them
    appeared = {f.cause for f in difference(before, after)["appeared"]}
    assert {"training.learning_rate_high", "output.constant"} <= appeared
