"""The model made ready to probe: the output diagnosed, layer names TensorFlow can scope, the chunk size its
activations allow; and its identity in the diagnosis.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from whyzero.config import settings
from whyzero.context import Context
from whyzero.errors import WhyzeroError
from whyzero.loading.models import LoadedModel
from whyzero.model_info import (
    layer_table,
    param_count,
)
from whyzero.probes.capture import is_keras3, leaf_layers
from whyzero.probes.plan import functional_module
from whyzero.probes.values import EDGES
from whyzero.proofs import PROOF_SAMPLES_MIN

SCOPE_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\\/>-]*$")


def scope_safe(name: str) -> str:
    """A name TensorFlow accepts as a graph scope: anything else becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("_-") or "layer"


def rename_unscopable_layers(loaded: LoadedModel) -> None:
    """TensorFlow refuses layer names with markup or spaces as graph scopes: such layers are renamed."""
    model = loaded.model
    if not loaded.has_layers or not is_keras3(model):
        return
    layers = [model] + [layer for layer in model._flatten_layers(include_self=False)]  # noqa: SLF001
    for layer in layers:
        if not SCOPE_NAME.match(layer.name):
            safe = scope_safe(layer.name)
            loaded.notes.append(f"layer {layer.name[:60]!r} was renamed {safe!r}: TensorFlow refuses its name "
                                "as a graph scope")
            object.__setattr__(layer, "name", safe)


def select_output(loaded: LoadedModel, output: str | None) -> LoadedModel:
    """A model with several outputs is diagnosed on one head: ``output`` by name, else the first."""
    model = loaded.model
    try:
        outputs = list(getattr(model, "outputs", None) or []) if loaded.has_layers else []
    except (AttributeError, ValueError):
        outputs = []
    if len(outputs) < 2:
        if output is not None and outputs:
            raise WhyzeroError(f"--output names a head, but the model has one output. Received: {output!r}")
        return loaded
    names = list(getattr(model, "output_names", None) or [t.name.split("/")[0] for t in outputs])
    if output is None:
        index = 0
    elif output in names:
        index = names.index(output)
    else:
        raise WhyzeroError(f"Expected an output among {names}. Received: {output!r}")
    km = functional_module(model)
    view = km.Model(model.inputs, outputs[index], name=scope_safe(f"{model.name}_{names[index]}"))
    object.__setattr__(view, "whyzero_loss_of", (model, index))  # not tracked as a sublayer
    notes = loaded.notes + [f"the model has {len(outputs)} outputs {names}: diagnosing '{names[index]}'"
                            + ("" if output else " (the first; choose another with --output)")]
    return LoadedModel(view, loaded.name, loaded.hash, loaded.source, loaded.has_layers, notes, head=names[index])


def activation_bytes(model, exact: bool = False) -> int | None:
    """One sample's activations (float32), from the layers' output shapes (an unknown length counted as 1); None
    when no layer's is known (a subclassed model), or, ``exact``, when one is not (or has an unknown length)."""

    per_sample, known = 0, False
    for _, layer in leaf_layers(model):
        try:
            shape = layer.output.shape[1:]
        except (AttributeError, ValueError, RuntimeError):
            if exact:
                return None
            continue
        if exact and None in tuple(shape):
            return None
        per_sample, known = per_sample + int(np.prod([d or 1 for d in shape])) * 4, True
    return per_sample if known else None


# A chunk holds at least as many samples as a big model's proof re-runs, where they fit twice ``chunk_mb``: on two
# cores ResNet50's pass ran 4 images a chunk at 1.2 cores' worth of CPU and 8 at 1.5 (32 images: 28-32 s → 24-27 s,
# +12% memory), and the proof's re-run is then one chunk of the probe's own shape.
CHUNK_MIN = PROOF_SAMPLES_MIN
CHUNK_MIN_BUDGETS = 2


def chunk_size(model, batch: np.ndarray) -> int:
    """Samples per forward pass: as many as fit ``chunk_mb`` of one sample's activations (float32), and at least
    ``CHUNK_MIN`` where they fit ``CHUNK_MIN_BUDGETS`` times it."""
    config = settings()
    per_sample = max(activation_bytes(model) or 0, batch[0].nbytes if len(batch) else 1)
    budget = config.chunk_mb * 2**20
    fit = int(budget // per_sample)
    if fit < CHUNK_MIN and CHUNK_MIN * per_sample <= CHUNK_MIN_BUDGETS * budget:
        fit = CHUNK_MIN
    return int(np.clip(fit, 1, config.chunk_size))


def model_identity(ctx: Context) -> dict[str, Any]:
    model = ctx.model
    loss = dict(ctx.loss) if ctx.loss else None
    if loss:
        loss.pop("object", None)
    return {"name": ctx.loaded.name, "hash": ctx.loaded.hash, "source": ctx.loaded.source,
            "has_layers": ctx.has_layers, "layers": layer_table(model) if ctx.has_layers else [],
            "params": param_count(model),
            "loss": loss, "optimizer": ctx.optimizer, "final_activation": ctx.task.activation,
            "task": ctx.task.kind, "n_classes": ctx.task.n_classes, "output_shape": list(ctx.outputs.shape[1:]),
            "histogram_edges": EDGES.tolist()}
