"""What whyzero.Monitor adds to training: epoch time with and without an observation, side by side in one run, and
whether its memory grows with the epochs.

    python benchmarks/monitor.py [--epochs 12] [--models mlp,cnn]

Each model trains epochs of 200+ steps (batch 32 over the digits, repeated) under a Monitor with a 64-sample
probe that observes at the end of every other epoch: each observed epoch is compared with the unobserved one
before it (the median of the pairs' ratios), so the machine's drift between fits does not swamp the monitor's
cost.  "waited" is what training waits for at an observation (the probe, the checks, the proofs); "observation"
adds the panels drawn and the line written in the background.  RSS is read after every epoch: it must hold flat.
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


def _fit(kind: str, epochs: int) -> dict[str, float]:
    """One fit, observed at the end of every other epoch: an observed epoch against the unobserved one before it,
    in the same process a minute apart, is a comparison the machine's drift does not swamp."""
    import keras

    import whyzero

    x, y = _data(kind)
    model = _model(kind, x)
    times, rss, marks = [], [], {}

    class EveryOther(whyzero.Monitor):
        def on_epoch_end(self, epoch, logs=None):
            if epoch % 2:
                super().on_epoch_end(epoch, logs)

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks["start"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - marks["start"])
            rss.append(_rss_mb())

    with tempfile.TemporaryDirectory() as folder:
        monitor = EveryOther(probe=(x[:64], y[:64]), run=folder)
        # the clock last: an epoch's time includes the monitor's observation at its end
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[monitor, Clock()])
    observed = epochs // 2
    # epochs 0 and 1 left out: the training's and the probe's first traces
    pairs = [(times[i], times[i + 1]) for i in range(2, epochs - 1, 2)]
    return {"steps": int(np.ceil(len(x) / 32)), "bare": float(np.median([b for b, _ in pairs])),
            "ratio": float(np.median([w / b for b, w in pairs])), "waited": monitor.seconds / observed,
            "observation": (monitor.seconds + monitor.background_seconds) / observed, "rss": rss[-1] - rss[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--models", default="mlp,cnn")
    args = parser.parse_args()
    from whyzero._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    print(f"CPU: {_cpu()}; {args.epochs} epochs, every other one observed, epochs 0 and 1 left out")
    print(f"{'model':6s} {'steps':>5s} {'bare s/epoch':>12s} {'observed/bare':>13s} {'waited s':>9s} "
          f"{'waited/epoch':>12s} {'observation s':>13s} {'RSS growth MB (epoch 2 -> last)':>31s}")
    for kind in args.models.split(","):
        r = _fit(kind, args.epochs)
        print(f"{kind:6s} {r['steps']:5d} {r['bare']:12.3f} {r['ratio']:13.3f} {r['waited']:9.3f} "
              f"{r['waited'] / r['bare']:12.1%} {r['observation']:13.3f} {r['rss']:31.1f}")


if __name__ == "__main__":
    main()
