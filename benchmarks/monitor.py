"""What whyzero.Monitor adds to training: epoch time with and without it, side by side in one run, and whether its
memory grows with the epochs.

    python benchmarks/monitor.py [--epochs 6] [--models mlp,cnn] [--rounds 2]

Each model trains epochs of 200+ steps (batch 32 over the digits, repeated) once bare and once under a Monitor
with a 64-sample probe, observing at every epoch's end.  The first epoch of each (tracing) is left out of the
medians.  Peak RSS is read after every epoch of the monitored fit: it must hold flat.
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time

import numpy as np


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="utf-8") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _data(kind: str):
    from whyzero.gallery import data

    if kind == "mlp":
        x, y = data.digits_vectors()
    else:
        x, y = data.digits_images(32)
    reps = int(np.ceil(200 * 32 / len(x)))  # at least 200 steps of 32 an epoch
    return np.concatenate([x] * reps), np.concatenate([y] * reps)


def _model(kind: str, x):
    import keras

    from whyzero.gallery.models import cnn_bn, mlp, seed

    seed(0)
    model = mlp(64, (64, 32), out_units=10, out_activation="softmax") if kind == "mlp" else cnn_bn(x.shape[1:], 10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def _fit(kind: str, epochs: int, monitored: bool) -> tuple[list[float], list[float], float, float]:
    import keras

    import whyzero

    x, y = _data(kind)
    model = _model(kind, x)
    times, rss, marks = [], [], {}

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks["start"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - marks["start"])
            rss.append(_rss_mb())

    callbacks, monitor = [], None
    with tempfile.TemporaryDirectory() as folder:
        if monitored:
            monitor = whyzero.Monitor(probe=(x[:64], y[:64]), run=folder)
            callbacks.append(monitor)
        # the clock last: an epoch's time includes the monitor's observation at its end
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[*callbacks, Clock()])
    if monitor is None:
        return times, rss, 0.0, 0.0
    # what training waits for (the probe, the checks), and all of it (with the panels and the line written meanwhile)
    return times, rss, monitor.seconds / epochs, (monitor.seconds + monitor.background_seconds) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--rounds", type=int, default=2, help="bare and monitored fits, alternated; the best of each")
    args = parser.parse_args()
    from whyzero._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    print(f"CPU: {_cpu()}; epochs {args.epochs}, the first of each left out")
    print(f"{'model':6s} {'steps':>5s} {'bare s/epoch':>12s} {'monitored':>10s} {'ratio':>6s} {'waited s':>9s} "
          f"{'waited/epoch':>12s} {'observation s':>13s} {'RSS growth MB (epoch 2 -> last)':>31s}")
    for kind in args.models.split(","):
        x, _ = _data(kind)
        bare, watched = [], []
        for _ in range(args.rounds):  # alternated: a 2-core machine's speed drifts between fits
            times, _, _, _ = _fit(kind, args.epochs, False)
            bare.append(float(np.median(times[1:])))
            times, rss, waited, per_observation = _fit(kind, args.epochs, True)
            watched.append(float(np.median(times[1:])))
        b, w = min(bare), min(watched)
        # the epochs' times drift by more than an observation on a shared 2-core machine: the observation's own
        # time against the bare epoch is the steadier figure
        print(f"{kind:6s} {int(np.ceil(len(x) / 32)):5d} {b:12.3f} {w:10.3f} {w / b:6.3f} {waited:9.3f} "
              f"{waited / b:12.1%} {per_observation:13.3f} {rss[-1] - rss[1]:31.1f}")


if __name__ == "__main__":
    main()
