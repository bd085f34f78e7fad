"""Training recipes: gallery cases trained from scratch under ``whyzero.Monitor``, so the timeline shows a cause
arrive on real data (``whyzero gallery train NAME RUN``).

Each recipe trains the case's model on the case's data the way the fault happens in practice, epoch by epoch,
with the monitor watching a fixed 64-sample probe; ``causes`` is what the timeline must name, and ``appears``
the epoch from which it must (the epoch the fault is brought in; 0 for a fault present from the start).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from whyzero._lazy import LazyModule
from whyzero.checks.gradients import LEARNING_RATE_HIGH, LEARNING_RATE_LOW
from whyzero.errors import WhyzeroError
from whyzero.gallery.cases import BATCH, _binary_digits
from whyzero.gallery.models import mlp, seed

keras = LazyModule("keras")


@dataclass(frozen=True)
class Recipe:
    name: str
    case: str
    causes: tuple[str, ...]
    appears: int
    epochs: int
    summary: str
    train: Callable = field(compare=False, repr=False)


RECIPES: dict[str, Recipe] = {}


def recipe(name: str, case: str, causes: tuple[str, ...], appears: int, epochs: int, summary: str):
    def register(fn: Callable) -> Callable:
        RECIPES[name] = Recipe(name, case, causes, appears, epochs, summary, fn)
        return fn

    return register


def _digits_mlp(optimizer) -> tuple:
    seed(0)
    x, y = _binary_digits()
    model = mlp(64, (32, 16), name="digits_mlp")
    model.compile(optimizer, "binary_crossentropy", metrics=["accuracy"])
    return model, x, y


def _fit(model, x, y, epochs: int, monitor, callbacks=()) -> None:
    model.fit(x[BATCH:], y[BATCH:], epochs=epochs, batch_size=32, verbose=0, shuffle=True,
              callbacks=[*callbacks, monitor])


@recipe("binary_healthy", "binary_healthy", (), 0, 6,
        "Digits >= 5 vs < 5 under Adam at 1e-3: a healthy run, clean at every epoch.")
def _healthy(monitor_for, epochs: int) -> None:
    model, x, y = _digits_mlp(keras.optimizers.Adam(1e-3))
    _fit(model, x, y, epochs, monitor_for(x[:BATCH], y[:BATCH]))


@recipe("binary_lr_spike", "binary_sgd_dead_relu", (LEARNING_RATE_HIGH.id,), 3, 6,
        "The same classifier under SGD at 0.05, then a schedule that raises the rate to 20 at epoch 3: the weights "
        "blow up, the ReLUs die and the predictions go flat from that epoch on.")
def _lr_spike(monitor_for, epochs: int) -> None:
    model, x, y = _digits_mlp(keras.optimizers.SGD(0.05))
    spike = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 if epoch < 3 else 20.0)
    _fit(model, x, y, epochs, monitor_for(x[:BATCH], y[:BATCH]), callbacks=[spike])


@recipe("binary_lr_tiny", "binary_lr_tiny", (LEARNING_RATE_LOW.id,), 0, 4,
        "Adam at 1e-10 from the start: the weights do not move, measured at every epoch.")
def _lr_tiny(monitor_for, epochs: int) -> None:
    model, x, y = _digits_mlp(keras.optimizers.Adam(1e-10))
    _fit(model, x, y, epochs, monitor_for(x[:BATCH], y[:BATCH]))


def get(name: str) -> Recipe:
    if name not in RECIPES:
        raise WhyzeroError(f"No training recipe named {name!r}. Received: {name}; the recipes are "
                           + ", ".join(RECIPES))
    return RECIPES[name]


def train(name: str, run: str, epochs: int | None = None, stop_on: str | None = None):
    """Trains recipe ``name`` under a ``whyzero.Monitor`` writing to ``run``; returns the monitor."""
    from whyzero.monitor import Monitor

    r = get(name)
    made = {}

    def monitor_for(x, y):
        made["monitor"] = Monitor(probe=(x, y), run=run, stop_on=stop_on)
        return made["monitor"]

    r.train(monitor_for, epochs or r.epochs)
    return made["monitor"]
