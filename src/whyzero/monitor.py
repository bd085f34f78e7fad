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
from typing import Any

import numpy as np

from whyzero._quiet import import_tensorflow_quietly

import_tensorflow_quietly()
import keras  # noqa: E402 - after TensorFlow's quiet start

from whyzero import __version__  # noqa: E402
from whyzero.errors import WhyzeroError  # noqa: E402
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
        self.seconds = 0.0  # the monitor's own time, all observations together
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
        return self._observe(model, step if epoch is None else epoch, step, logs)

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

    def _observe(self, model, epoch: int, step: int, logs: dict | None) -> list[dict]:
        from whyzero.engine import diagnose_fed

        started = time.perf_counter()
        logs = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        if "loss" in logs:
            self._losses = (self._losses + [{"epoch": epoch, "loss": logs["loss"]}])[-HISTORY:]
        weights, iterations = _snapshot(model), _iterations(model)
        updates = _updates(self._weights, weights)
        live = {"epoch": epoch, "step": step, "steps": max(iterations - self._iterations, 0), "updates": updates,
                "history": list(self._losses)}
        self._weights, self._iterations = weights, iterations
        d = diagnose_fed(self._fed, lambda stage, fraction: None, whatif=False, live=live, traced=True)
        findings = compact_findings(d.findings)
        seconds = time.perf_counter() - started
        self.seconds += seconds
        record = {"epoch": epoch, "step": step, "seconds": round(seconds, 4), "logs": logs,
                  "loss": d.summaries["measurements"].get("loss_value"),
                  "prior_entropy": _prior_entropy(d.summaries["measurements"]), "layers": _layer_stats(d, updates),
                  "findings": findings, "diagnosis": d.to_dict()}
        if self.stop_on == "critical" and _established(findings):
            self.stopped_at = epoch
            record["stopped"] = True
            model.stop_training = True
        self._writer.append(record)
        return findings


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


def _prior_entropy(measured: dict) -> float | None:
    """The entropy of the probe's label prior (nats), for a classifier with labels: the loss of predicting the class
    frequencies, what a flat model's loss settles at."""
    from whyzero.measurements import decode_array

    ids = decode_array(measured.get("label_ids"))
    if ids is None or measured["task"]["kind"] not in ("binary", "multiclass"):
        return None
    ids = np.asarray(ids).reshape(-1)
    ids = ids[ids >= 0].astype(int)
    if ids.size == 0:
        return None
    shares = np.bincount(ids) / ids.size
    shares = shares[shares > 0]
    return float(-(shares * np.log(shares)).sum())


def _layer_stats(d, updates: list[dict]) -> dict[str, dict[str, float | None]]:
    """Per layer, the timeline's numbers: activation RMS, share of units never active, gradient norm, update."""
    measured = d.summaries["measurements"]
    grads = {r["layer"]: r["grad_norm"] for r in measured.get("gradients", [])}
    moved = {u["layer"]: u["ratio"] for u in updates}
    out = {}
    for r in measured.get("layers", []):
        v = r["values"]
        out[r["name"]] = {"rms": v.get("rms"), "dead": v.get("never_active_share"), "grad": grads.get(r["name"]),
                          "update": moved.get(r["name"])}
    return out


def _established(findings: list[dict]) -> bool:
    """Whether the diagnosis names a critical root cause (not a candidate: one not established)."""
    return any(f["role"] == "root" and f["severity"] == "critical" for f in findings)
