"""What the model remembers of its training inputs, and which preprocessing matches it.

Trained ``BatchNormalization`` layers hold the mean and variance of what they
saw (``moving_mean``, ``moving_variance``); an adapted ``Normalization`` layer
holds the input's; a ``Rescaling`` layer says what the model does itself.  A
user with only the model and the batch still learns the preprocessing is wrong.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from whyzero._tf import tf
from whyzero.distances import (
    MEMORY_LAYERS,
    batchnorm_memory,
    is_untrained,
    memory_score,
    normalization_score,
    stats_score,
)
from whyzero.measurements import Candidate, NormalizationMemory, WhatIf, predicted_classes
from whyzero.preprocessing import PREPROCESSINGS, recover_raw
from whyzero.probes.capture import can_capture, capturing, leaf_layers
from whyzero.probes.inputs import InputStats
from whyzero.probes.plan import BatchNormInput, batchnorm_inputs, first_output, functional_module, steps_share
from whyzero.probes.traced import bn_stats, without_graph_rewrites


def normalization_memory(model) -> NormalizationMemory | None:
    """An adapted Normalization layer near the input: its mean and variance."""
    for path, layer in leaf_layers(model):
        if type(layer).__name__ == "Normalization" and hasattr(layer, "mean"):
            mean = np.asarray(layer.mean).reshape(-1)
            var = np.asarray(layer.variance).reshape(-1)
            if np.all(mean == 0) and np.all(var == 1):
                continue
            return NormalizationMemory(path, mean.tolist(), var.tolist())
    return None


def rescaling_layers(model) -> list[dict[str, Any]]:
    out = []
    for path, layer in leaf_layers(model):
        if type(layer).__name__ == "Rescaling":
            out.append({"layer": path, "scale": float(np.mean(layer.scale)),
                        "offset": float(np.mean(layer.offset))})
    return out


# A big model's what-if scores its candidates against the memory on one chunk of at least this many samples.
SCORE_SAMPLES_MIN = 4
# Samples a call of the pass that stops at the memory's BatchNorm inputs (``MemoryProbe.score_only``) takes, at
# most HEAD_CHUNK_FACTOR times the model's chunk: its few early layers hold a fraction of the model's activations,
# so the what-if's 8 MobileNetV2 samples go in one call instead of 7 and 1 (a call of a new shape sets its kernels
# up again), while a high-resolution model's memory stays within twice its chunk's.
HEAD_CHUNK = 16
HEAD_CHUNK_FACTOR = 2


class MemoryProbe:
    """Scores candidate batches against the model's memory (BatchNorm, Normalization) or a reference."""

    def __init__(self, model, train_stats: InputStats | None, chunk: int | None = None) -> None:
        """``chunk``: samples per pass of a compiled forward pass for the what-if's candidates (None: eager
        calls of ``predict_fn``, e.g. for a model with several inputs)."""
        self.model = model
        self.train_stats = train_stats
        self.chunk = chunk
        self._graphs: dict[tuple, Any] = {}
        self.normalization = normalization_memory(model)
        self._bn_model = None
        self._bn_layers = []
        self._capture = False
        self._head = None  # the pass up to the memory's BatchNorm inputs only, compiled once (see ``score_only``)
        if train_stats is None and self.normalization is None:
            self._find_batchnorm()

    @property
    def source(self) -> str | None:
        if self.train_stats is not None:
            return "training statistics"
        if self.normalization is not None:
            return f"Normalization layer '{self.normalization.layer}'"
        if self._bn_layers:
            return "BatchNormalization moving statistics"
        return None

    def _find_batchnorm(self) -> None:
        if can_capture(self.model):
            trained = [layer for _, layer in leaf_layers(self.model)
                       if type(layer).__name__ == "BatchNormalization" and _is_trained(layer)]
            self._bn_layers, self._capture = trained[:MEMORY_LAYERS], bool(trained)
            return

        km = functional_module(self.model)
        try:
            pairs = [(bn, t) for bn, t in batchnorm_inputs(self.model, km, 16) if _is_trained(bn)]
        except Exception:  # noqa: BLE001 - models we cannot cut stay without memory
            return
        pairs = pairs[:MEMORY_LAYERS]
        if pairs:
            self._bn_layers = [bn for bn, _ in pairs]
            self._bn_model = km.Model(self.model.inputs, [t for _, t in pairs])

    def run(self, batch: np.ndarray, predict_fn) -> tuple[np.ndarray, float | None]:
        """The model's output on ``batch`` and the batch's distance to the memory, in one pass where it can."""
        if self._capture and self.train_stats is None and self.normalization is None and self.chunk:
            return self._run_compiled(batch)
        if self._capture and self.train_stats is None and self.normalization is None:
            wanted = {id(layer) for layer in self._bn_layers}
            with capturing(self.model, keep=lambda layer: id(layer) in wanted) as tape:
                out = predict_fn(batch)
            firsts = {}
            for call in tape:  # one call per layer and chunk; the statistics add up over chunks
                firsts.setdefault(id(call.layer), []).append(np.asarray(call.inputs, np.float64))
            inputs = [np.concatenate(firsts[id(bn)]) for bn in self._bn_layers if id(bn) in firsts]
            return out, self._score_inputs(self._bn_layers, inputs)
        return predict_fn(batch), self.score(batch)

    def score_only(self, batch: np.ndarray, predict_fn) -> float | None:
        """The batch's distance to the memory without the model's output: for BatchNorm memory, a pass that stops
        at the first trained BatchNorm layers' inputs (MobileNetV2's first three sit within its first six layers),
        compiled once; the whole pass (``predict_fn``: the model fed its inputs) where the model cannot be cut
        there."""
        if self.train_stats is not None or self.normalization is not None:
            return self.score(batch)
        if self._head is None:
            self._head = self._compile_head() or False
        if not self._head:
            return self.run(batch, predict_fn)[1]
        head, layers = self._head
        x = np.asarray(batch, np.float32)
        # the head holds a few early layers: the what-if's samples (16 at most) go in at once, one shape a call
        chunk = max(self.chunk, min(HEAD_CHUNK, HEAD_CHUNK_FACTOR * self.chunk)) if self.chunk else max(len(x), 1)
        totals = None
        with without_graph_rewrites():
            for start in range(0, len(x), chunk):
                part = tf.convert_to_tensor(x[start:start + chunk])
                stats = [[float(c), s.numpy(), ss.numpy()] for c, s, ss in head(part)]
                totals = stats if totals is None else [[a + b for a, b in zip(t, p)] for t, p in zip(totals, stats)]
        return self._score_stats(layers, totals or [])

    def prepare(self) -> bool:
        """Builds and traces the cut pass ``score_only`` runs, on the calling thread; whether ``score_only`` then
        runs no other trace (memory from training statistics or a Normalization layer needs none), so it may be
        called on another thread while the probe's pass is traced (which patches the layers' calls,
        ``capturing``)."""
        if self.train_stats is not None or self.normalization is not None:
            return True
        if self._head is None:
            self._head = self._compile_head() or False
            try:
                if self._head:
                    self._head[0].get_concrete_function()
            except Exception:  # noqa: BLE001 - a cut pass that cannot be traced: the whole pass, later
                self._head = False
        return bool(self._head)

    def _compile_head(self):
        """(compiled function giving each memory BatchNorm layer's input statistics, those layers), or None."""
        if not self._bn_layers or len(getattr(self.model, "inputs", None) or []) != 1:
            return None
        try:
            km = functional_module(self.model)
            wanted = {id(layer) for layer in self._bn_layers}
            pairs = [(bn, t) for bn, t in batchnorm_inputs(self.model, km, 64) if id(bn) in wanted]
            if len(pairs) != len(self._bn_layers):
                return None
            cut = km.Model(self.model.inputs, [t for _, t in pairs])
            shape = self.model.inputs[0].shape[1:]

            @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32)], autograph=False)
            def head(t):
                outs = cut(t, training=False)
                return [bn_stats(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]
            return head, [bn for bn, _ in pairs]
        except Exception:  # noqa: BLE001 - a model that cannot be cut at its BatchNorm inputs: the whole pass
            return None

    def score(self, batch: np.ndarray) -> float | None:
        if self.train_stats is not None:
            return stats_score(InputStats.of(batch), self.train_stats)
        if self.normalization is not None:
            return normalization_score(InputStats.of(batch), self.normalization)
        if self._bn_model is None:
            if self._capture:
                return self.run(batch, lambda b: self.model(tf.convert_to_tensor(b.astype(np.float32)),
                                                            training=False))[1]
            return None
        outs = self._bn_model(tf.convert_to_tensor(batch.astype(np.float32)), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return self._score_inputs(self._bn_layers, [np.asarray(t, np.float64) for t in outs])

    def _run_compiled(self, batch: np.ndarray) -> tuple[np.ndarray, float | None]:
        """The model's output and the BatchNorm layers' input statistics from one compiled forward pass per chunk
        (traced once per input shape; an eager MobileNetV2 pass took 4x as long)."""
        x = np.asarray(batch, np.float32)
        key = x.shape[1:]
        if key not in self._graphs:
            wanted = {id(layer) for layer in self._bn_layers}
            present: list = []  # the layers the pass called, filled while tracing

            @tf.function(input_signature=[tf.TensorSpec([None, *key], tf.float32)], autograph=False)
            def forward(t):
                with capturing(self.model, keep=lambda layer: id(layer) in wanted) as tape:
                    out = self.model(t, training=False)
                first = {}
                for call in tape:
                    first.setdefault(id(call.layer), call.inputs)
                present[:] = [bn for bn in self._bn_layers if id(bn) in first]
                return tf.cast(first_output(out), tf.float32), [bn_stats(first[id(bn)]) for bn in present]
            self._graphs[key] = forward, present
        outputs, totals = [], None
        with without_graph_rewrites():
            for start in range(0, len(x), self.chunk):
                out, stats = self._graphs[key][0](tf.convert_to_tensor(x[start:start + self.chunk]))
                outputs.append(out.numpy())
                stats = [[float(c), s.numpy(), ss.numpy()] for c, s, ss in stats]
                totals = stats if totals is None else [[a + b for a, b in zip(t, p)] for t, p in zip(totals, stats)]
        return np.concatenate(outputs), self._score_stats(self._graphs[key][1], totals or [])

    def _score_inputs(self, layers, inputs) -> float | None:
        stats = []
        for t in inputs:
            flat = t.reshape(-1, t.shape[-1])
            stats.append((len(flat), flat.sum(0), (flat**2).sum(0)))
        return self._score_stats(layers, stats)

    def _score_stats(self, layers, stats) -> float | None:
        """The memory score from each layer's input (count, per-channel sum, per-channel sum of squares)."""
        bns = [BatchNormInput(bn.name, count=count, sum=total, sumsq=squares,
                              moving_mean=np.asarray(bn.moving_mean), epsilon=float(bn.epsilon),
                              moving_variance=np.asarray(bn.moving_variance), converged=steps_share(bn, self.model))
               for bn, (count, total, squares) in zip(layers, stats)]
        return memory_score(batchnorm_memory(bns))


def _is_trained(bn) -> bool:
    return not is_untrained(bn.moving_mean, bn.moving_variance)


# Without any memory of the training inputs, a preprocessing is named from the labels alone when the model gets
# at least this share of the what-if's samples right under it, and this much more than as given; the what-if
# runs only when the model gets fewer than LABELS_ACCURACY_GATE of them right as given.
LABELS_ACCURACY_MIN = 0.5
LABELS_ACCURACY_GAIN = 0.35
LABELS_ACCURACY_GATE = 0.9
# ... and, between LABELS_ACCURACY_MIN and the gate, only when this share of them is predicted as one class.
LABELS_ONE_CLASS = 0.5


def whatif_samples(chunk: int | None) -> int:
    """How many of the first samples the what-if compares: 16 rank the preprocessings; a big model (small chunks)
    ranks them on one chunk of at least 8."""
    return min(16, max(8, chunk or 0))


def whatif_candidates(batch: np.ndarray, probe: MemoryProbe, max_samples: int = 16,
                      raw_images: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], str] | None:
    """The batches the what-if compares, each the first ``max_samples`` (as given, channels reversed, each standard
    preprocessing of the raw pixels, the training statistics'), and how the raw pixels were found; None for a
    batch that is not images."""
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3):
        return None
    sample = batch[:max_samples]
    if raw_images is not None and len(raw_images) >= len(sample) and raw_images.shape[1:] == sample.shape[1:]:
        raw, how = raw_images[:max_samples].astype(np.float64), "the image files' own pixels"
    else:
        raw, how = recover_raw(sample)
    candidates = {"as given": sample.astype(np.float64)}
    if sample.shape[-1] == 3:
        candidates["as given, channels reversed"] = sample[..., ::-1].astype(np.float64)
    candidates.update({name: fn(raw) for name, fn in PREPROCESSINGS.items()})
    if probe.train_stats is not None and probe.train_stats.channels == sample.shape[-1]:
        raw_stats = InputStats.of(raw)
        candidates["training mean/std"] = ((raw - raw_stats.mean) / np.maximum(raw_stats.std, 1e-12)
                                           * probe.train_stats.std + probe.train_stats.mean)
    return {name: c.astype(_fed_dtype(batch)) for name, c in candidates.items()}, how


def _fed_dtype(batch: np.ndarray):
    """The dtype the what-if feeds the model: the batch's own if floating, else float32."""
    return batch.dtype if batch.dtype.kind == "f" else np.float32


def memory_scores(batch: np.ndarray, probe: MemoryProbe, max_samples: int = 16, raw_images: np.ndarray | None = None,
                  predict_fn=None) -> tuple[str, dict[str, float | None]] | None:
    """The what-if against the model's memory (``probe.source``) up to its ranking: how the raw pixels were found
    and each candidate's distance to the memory (``score_candidates``); None where the batch is not images."""
    built = whatif_candidates(batch, probe, max_samples, raw_images)
    return None if built is None else (built[1], score_candidates(built[0], probe, predict_fn))


def preprocessing_whatif(batch: np.ndarray, probe: MemoryProbe, predict_fn, max_samples: int = 16,
                         raw_images: np.ndarray | None = None, labels: np.ndarray | None = None,
                         given: np.ndarray | None = None,
                         scored: tuple[str, dict[str, float | None]] | None = None) -> WhatIf | None:
    """Tries the standard preprocessings on the recovered raw pixels.

    With no memory of the training inputs (no training statistics, Normalization or trained BatchNorm), the
    labels judge instead: when the model gets the first samples wrong as given (``given``: its outputs on the
    batch; fewer than ``LABELS_ACCURACY_MIN`` right, or fewer than ``LABELS_ACCURACY_GATE`` with one class
    predicted for most), each candidate is scored by how many it gets right.  ``scored``: ``memory_scores``
    worked out already (``EarlyWork``).

    Returns:
        For each candidate: its memory score (or its accuracy on the labels) and the output under it; the best
        candidate; and the score of the batch as given.  None when there is nothing to compare with.
    """
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3):
        return None
    if probe.source is not None:
        how, scores = scored or memory_scores(batch, probe, max_samples, raw_images, predict_fn)
        as_given = given[:max_samples] if given is not None and len(given) >= min(len(batch), max_samples) \
            else predict_fn(batch[:max_samples].astype(_fed_dtype(batch)))
        return _whatif_by_memory(scores, probe, how, as_given)
    if labels is None or given is None or len(labels) < max_samples or labels.ndim != 1:
        return None
    labels = labels[:max_samples]
    right, top = accuracy(given[:max_samples], labels), output_brief(given[:max_samples])["top_class_share"]
    if right >= LABELS_ACCURACY_GATE or (right >= LABELS_ACCURACY_MIN and top < LABELS_ONE_CLASS):
        return None  # right as given, or wrong at times without settling on one class: nothing to explain
    candidates, how = whatif_candidates(batch, probe, max_samples, raw_images)
    rows = []
    for name, candidate in candidates.items():
        out = given[:max_samples] if name == "as given" else predict_fn(candidate)
        rows.append(Candidate(name, None, **output_brief(out), accuracy=accuracy(out, labels)))
    given_accuracy = rows[0].accuracy
    top = max(rows[1:], key=lambda r: r.accuracy, default=None)
    good = top is not None and top.accuracy >= LABELS_ACCURACY_MIN and \
        top.accuracy - given_accuracy >= LABELS_ACCURACY_GAIN
    return WhatIf("the labels (the model holds no memory of its training inputs)", how, rows,
                  top.name if good else None, None, given_accuracy=given_accuracy, samples=len(labels))


def score_candidates(candidates: dict[str, np.ndarray], probe: MemoryProbe, predict_fn=None) -> dict[str, float | None]:
    """Each candidate's distance to the memory, on a pass that stops at it (``MemoryProbe.score_only``): a ranking
    needs no outputs, and the proof of the best candidate re-runs the model under it.  A big model's (chunks of
    fewer than 8) are scored on one chunk of at least ``SCORE_SAMPLES_MIN``: a memory score compares each channel's
    mean and variance over every position, which 4 images give as well as 8 (ResNet50's seven candidates through
    its stem: 1.0 s on 8 images)."""
    n = max(SCORE_SAMPLES_MIN, probe.chunk) if probe.chunk else None
    scores: dict[str, float | None] = {}
    for name, candidate in candidates.items():
        # a candidate the same as one scored already (raw pixels given: 'none' is the batch as given) is not run again
        same = next((other for other in scores if np.array_equal(candidates[other][:n], candidate[:n])), None)
        scores[name] = scores[same] if same is not None else probe.score_only(candidate[:n], predict_fn)
    return scores


def _whatif_by_memory(scores: dict[str, float | None], probe: MemoryProbe, how: str, given: np.ndarray) -> WhatIf:
    """The what-if's rows from the candidates' memory scores; the model's output (``given``) only for the batch as
    given (the probe's)."""
    scored = [name for name, score in scores.items() if score is not None]
    best = min(scored, key=lambda name: scores[name]) if scored else None
    rows = [Candidate(name, score, **(output_brief(given) if name == "as given" else {}))
            for name, score in scores.items()]
    return WhatIf(probe.source, how, rows, best, scores.get("as given"))


def accuracy(out: np.ndarray, labels: np.ndarray) -> float:
    """The share of samples whose predicted class (argmax, or > 0.5 for one unit) is their label."""
    predicted = predicted_classes(out, "multiclass")
    return float(np.mean(predicted == np.asarray(labels)[:len(predicted)]))


def output_brief(out: np.ndarray) -> dict[str, Any]:
    """Mean, spread across samples and the predicted class shares of a model's output."""
    flat = out.reshape(len(out), -1) if out.ndim <= 2 else out.reshape(-1, out.shape[-1])
    spread = float(np.mean(np.std(flat, axis=0)))
    if flat.shape[1] > 1:
        classes = np.bincount(np.argmax(flat, 1), minlength=flat.shape[1]) / len(flat)
    else:
        positive = float(np.mean(flat[:, 0] > 0.5))
        classes = np.array([1 - positive, positive])
    return {"output_mean": float(np.mean(flat)), "output_spread": spread,
            "top_class_share": float(classes.max()), "class_shares": classes[:20].tolist()}


