"""``whyzero.Monitor``: the diagnosis taken during training, at each epoch's end or every N steps.

    model.fit(x, y, epochs=50, callbacks=[whyzero.Monitor(probe=(x_val[:64], y_val[:64]), run="runs/exp1")])

Each observation measures one fixed probe batch with the same streaming probes as ``whyzero diagnose`` and runs
the same checks, with what only a running training shows (``Measurements.live``): each layer's actual update
since the last observation, the optimizer steps between, and the loss the fit reported over time.  The probe's
compiled pass is traced once and reused: the weights change, the graph does not.  Each observation is appended
to the run's file as soon as it exists (``whyzero.timeline.RunWriter``); the monitor itself keeps one copy of the
weights (for the next update) and the last ``HISTORY`` losses, so its memory does not grow with the epochs.

``stop_on="critical"`` ends training once a root cause is established, as ``TerminateOnNaN`` does for NaN.
A custom training loop calls ``monitor.observe(model, step)`` itself.

Imports inside functions are deliberately lazy: TensorFlow loads with this module, the engine on first use.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from whyzero._quiet import import_tensorflow_quietly

import_tensorflow_quietly()
import keras  # noqa: E402 - after TensorFlow's quiet start

from whyzero import __version__  # noqa: E402
from whyzero.checks.labels import entropy, shares_of  # noqa: E402
from whyzero.errors import WhyzeroError  # noqa: E402
from whyzero.findings import clean  # noqa: E402
from whyzero.probes.capture import leaf_layers  # noqa: E402
from whyzero.timeline import RunWriter, compact_findings, run_file  # noqa: E402

# Losses the fit reported, kept for the checks (the last ones are enough to say "flat for N epochs").
HISTORY = 20
STOP_ON = (None, "critical")


class Monitor(keras.callbacks.Callback):
    """Diagnoses a model while it trains, and writes a timeline of causes.

    Args:
        probe: the fixed batch to measure, ``x`` or ``(x, y)`` or ``(x, y, masks)``, as fed in training
            (64 samples is plenty).
        every: ``"epoch"`` (each epoch's end) or a number of training steps.
        run: the run's folder (its ``timeline.jsonl`` is written there) or a ``.jsonl`` file.
        stop_on: ``"critical"`` stops training once a critical root cause is established; None never stops.
        train_stats: a ``whyzero stats`` file or ``InputStats`` for the input checks, as for a diagnosis.
    """

    def __init__(self, probe: Any, every: str | int = "epoch", run: str = "runs/whyzero", stop_on: str | None = None,
                 train_stats: Any = None) -> None:
        super().__init__()
        if every != "epoch" and not (isinstance(every, int) and every > 0):
            raise WhyzeroError(f"Expected every='epoch' or a positive number of steps. Received: {every!r}")
        if stop_on not in STOP_ON:
            raise WhyzeroError(f"Expected stop_on in {STOP_ON}. Received: {stop_on!r}")
        x, y, masks = _split_probe(probe)
        self.probe, self.every, self.stop_on, self.train_stats = (x, y, masks), every, stop_on, train_stats
        self.path = run_file(run)
        self.stopped_at: int | None = None
        self.seconds = 0.0  # the time training waits for the monitor, all observations together
        self.background_seconds = 0.0  # the panels drawn and lines written while training goes on
        self.background_cpu_seconds = 0.0  # the CPU time of that work (the disk's waits left out)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whyzero-monitor")
        self._pending = None
        self._fed = self._writer = None
        self._weights: dict[str, list[np.ndarray]] = {}
        self._iterations = 0
        self._losses: list[dict[str, float]] = []
        self._epoch, self._step = 0, 0
        if every != "epoch":
            # a batch hook only when it is needed: Keras waits on every step's logs for a callback that has one
            self.on_train_batch_end = self._count_step

    # -- Keras' hooks ---------------------------------------------------------------
    def on_train_begin(self, logs=None) -> None:
        self._start(self.model)

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch

    def _count_step(self, batch, logs=None) -> None:
        self._step += 1
        if self._step % self.every == 0:
            self._observe(self.model, self._epoch, self._step, logs)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.every == "epoch":
            self._observe(self.model, epoch, _iterations(self.model), logs)

    # -- a custom training loop -----------------------------------------------------
    def observe(self, model, step: int, logs: dict | None = None, epoch: int | None = None) -> list[dict]:
        """Takes one observation of ``model`` at training step ``step`` (a custom training loop's call); returns
        its findings (cause, severity, role, title).  The first call starts the run."""
        if self._fed is None:
            self.set_model(model)
            self._start(model)
        findings = self._observe(model, step if epoch is None else epoch, step, logs)
        self._wait()  # a custom loop has no end of training to wait at: the line is on disk when this returns
        return findings

    # -- the work ------------------------------------------------------------------
    def _start(self, model) -> None:
        from whyzero.engine import prepare

        x, y, masks = self.probe
        self._fed = prepare(model, x, labels=y, masks=masks, train_stats=self.train_stats)
        self._weights = _snapshot(model)
        self._iterations = _iterations(model)
        self._writer = RunWriter(self.path, {
            "model": getattr(model, "name", "model"), "every": self.every, "probe": list(self._fed.batch.shape),
            "labels": y is not None, "whyzero": __version__})

    def on_train_end(self, logs=None) -> None:
        self._wait()

    def _observe(self, model, epoch: int, step: int, logs: dict | None) -> list[dict]:
        """Measures and judges the model now (the probe, the checks, the proofs: what needs its weights), then
        draws the panels and appends the line in the background while training goes on: one line in flight at
        most, written in order."""
        from whyzero.engine import judge

        self._wait()
        started = time.perf_counter()
        logs = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        if "loss" in logs:
            self._losses = (self._losses + [{"epoch": epoch, "loss": logs["loss"]}])[-HISTORY:]
        weights, iterations = _snapshot(model), _iterations(model)
        updates = _updates(self._weights, weights)
        live = {"epoch": epoch, "step": step, "steps": max(iterations - self._iterations, 0), "updates": updates,
                "history": list(self._losses)}
        self._weights, self._iterations = weights, iterations
        judged = judge(self._fed, lambda stage, fraction: None, whatif=False, live=live, traced=True)
        findings = compact_findings(judged.findings)
        record = {"epoch": epoch, "step": step, "logs": logs, "loss": judged.measured.loss_value,
                  "prior_entropy": _prior_entropy(judged.measured), "layers": _layer_stats(judged.measured, updates),
                  "findings": findings}
        if self.stop_on == "critical" and _established(findings):
            self.stopped_at = epoch
            record["stopped"] = True
            model.stop_training = True
        seconds = time.perf_counter() - started
        self.seconds += seconds
        record["seconds"] = round(seconds, 4)
        self._pending = self._pool.submit(self._write, record, judged)
        return findings

    def _write(self, record: dict, judged) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        record = clean(record)  # JSON data: a NaN loss or an Inf activation size becomes null
        record["diagnosis"] = judged.document().to_dict()
        self._writer.append(record)
        self.background_seconds += time.perf_counter() - started
        self.background_cpu_seconds += time.thread_time() - cpu

    def _wait(self) -> None:
        """Until the line in flight is on disk (its error, if any, raised here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()


def _split_probe(probe: Any) -> tuple[Any, Any, Any]:
    if isinstance(probe, (tuple, list)):
        if not 1 <= len(probe) <= 3:
            raise WhyzeroError(f"Expected probe=x, (x, y) or (x, y, masks). Received: a {type(probe).__name__} of "
                               f"{len(probe)} items")
        parts = list(probe) + [None] * (3 - len(probe))
        return parts[0], parts[1], parts[2]
    return probe, None, None


def _is_number(value: Any) -> bool:
    try:
        return np.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _iterations(model) -> int:
    optimizer = getattr(model, "optimizer", None)
    try:
        return int(np.asarray(optimizer.iterations)) if optimizer is not None else 0
    except (AttributeError, TypeError, ValueError):
        return 0


def _snapshot(model) -> dict[str, list[np.ndarray]]:
    """A copy of each layer's trainable weights, by layer path (one copy: the next observation replaces it)."""
    return {path: [np.array(w) for w in layer.trainable_weights] for path, layer in leaf_layers(model)
            if getattr(layer, "trainable_weights", None)}


def _updates(before: dict[str, list[np.ndarray]], after: dict[str, list[np.ndarray]]) -> list[dict[str, Any]]:
    """Each layer's measured update since the last observation: ‖ΔW‖/‖W‖ over all its trainable weights."""
    rows = []
    for layer, weights in after.items():
        old = before.get(layer)
        if old is None or len(old) != len(weights) or any(a.shape != b.shape for a, b in zip(old, weights)):
            continue
        change = float(np.sqrt(sum(np.sum(np.square(b.astype(np.float64) - a)) for a, b in zip(old, weights))))
        size = float(np.sqrt(sum(np.sum(np.square(a.astype(np.float64))) for a in old)))
        rows.append({"layer": layer, "change": change, "norm": size, "ratio": change / size if size > 0 else None,
                     "moved": change > 0})
    return rows


def _prior_entropy(m) -> float | None:
    """The entropy of the probe's label prior (nats), for a classifier with labels: the loss of predicting the class
    frequencies, what a flat model's loss settles at."""
    if m.label_ids is None or m.task.kind not in ("binary", "multiclass"):
        return None
    ids = np.asarray(m.label_ids).reshape(-1)
    if not (ids >= 0).any():
        return None
    return entropy(shares_of(ids, int(ids.max()) + 1))


def _layer_stats(m, updates: list[dict]) -> dict[str, dict[str, float | None]]:
    """Per layer, the timeline's numbers: activation RMS, share of units never active, gradient norm, update."""
    grads = {r.layer: r.grad_norm for r in m.gradients}
    moved = {u["layer"]: u["ratio"] for u in updates}
    return {r.name: {"rms": r.values.rms, "dead": r.values.never_active_share, "grad": grads.get(r.name),
                     "update": moved.get(r.name)} for r in m.layers}


def _established(findings: list[dict]) -> bool:
    """Whether the diagnosis names a critical root cause (not a candidate: one not established)."""
    return any(f["role"] == "root" and f["severity"] == "critical" for f in findings)
