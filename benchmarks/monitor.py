"""What whyzero.Monitor adds to training: epoch time with and without an observation, side by side in one run, and
whether its memory grows with the epochs.

    python benchmarks/monitor.py [--epochs 60] [--models mlp,cnn]

Each model trains epochs of 200+ steps (batch 32 over the digits, repeated) under a Monitor with a 64-sample
probe that observes at the end of every third epoch.  Two figures per model, both after the first observation
(which traces the probe's pass):
- the cost bound: what training waits for at an observation (the probe, the checks, the proofs) plus the CPU
  time of the line drawn and written in the background, over a bare epoch.  The background shares the CPU and
  the interpreter with training, so at most all of it slows training;
- the epoch time ratio: what an observed epoch and the next (where its line is written) add to the clean epoch
  before them, over that clean epoch (from each position's median over ~19 such triples).  Epochs of the same
  fit vary by 10-20% on a shared 2-core machine, so this one reads the cost to a few percent at best.
RSS is read after every epoch: it must hold flat.
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
    """One fit, observed at the end of every third epoch.  An observation costs the epoch it ends (the probe, the
    checks, the proofs) and the next (its line drawn and written in the background while training goes on), so each
    observed epoch and the next are compared with the clean epoch before them, in the same process seconds apart:
    a comparison the machine's drift does not swamp."""
    import keras

    import whyzero

    x, y = _data(kind)
    model = _model(kind, x)
    times, rss, marks = [], [], {}

    class EveryThird(whyzero.Monitor):
        def on_epoch_end(self, epoch, logs=None):
            if epoch % 3 == 1:
                super().on_epoch_end(epoch, logs)
            if epoch == 1:  # the first observation traces the probe's pass: left out of the steady cost
                self._wait()
                marks["first"] = (self.seconds, self.background_seconds, self.background_cpu_seconds)

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks["start"] = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - marks["start"])
            rss.append(_rss_mb())

    with tempfile.TemporaryDirectory() as folder:
        monitor = EveryThird(probe=(x[:64], y[:64]), run=folder)
        # the clock last: an epoch's time includes the monitor's observation at its end
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[monitor, Clock()])
    # epochs 0-2 left out: the training's and the probe's first traces; (clean, observed, after) from epoch 3
    triples = [times[i:i + 3] for i in range(3, epochs - 2, 3)]
    observed = len(triples)
    waited, background = monitor.seconds - marks["first"][0], monitor.background_seconds - marks["first"][1]
    cpu = monitor.background_cpu_seconds - marks["first"][2]
    return {"steps": int(np.ceil(len(x) / 32)), "bare": float(np.median([c for c, _, _ in triples])),
            "ratio": _ratio(triples), "observations": observed,
            "waited": waited / observed, "observation": (waited + background) / observed,
            "cpu": (waited + cpu) / observed, "rss": rss[-1] - rss[3]}


def _ratio(triples: list[list[float]]) -> float:
    """1 + (what an observed epoch and the next add to a clean one) / a clean one, from each position's median: a
    slow outlier epoch (the machine's, not the monitor's) falls twice as often on the two observed positions as on
    the clean one, so the median of each triple's own ratio reads high; each position's median does not."""
    clean, observed, after = (float(np.median([t[i] for t in triples])) for i in range(3))
    return 1 + (observed + after - 2 * clean) / clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--models", default="mlp,cnn")
    args = parser.parse_args()
    from whyzero._quiet import import_tensorflow_quietly

    import_tensorflow_quietly()
    print(f"CPU: {_cpu()}; {args.epochs} epochs, every third one observed, epochs 0-2 left out")
    print(f"{'model':6s} {'steps':>5s} {'bare s/epoch':>12s} {'waited ms':>9s} {'background CPU ms':>17s} "
          f"{'cost bound':>10s} {'epoch time ratio':>16s} {'RSS growth MB':>13s}")
    for kind in args.models.split(","):
        r = _fit(kind, args.epochs)
        print(f"{kind:6s} {r['steps']:5d} {r['bare']:12.3f} {1000 * r['waited']:9.1f} "
              f"{1000 * (r['cpu'] - r['waited']):17.1f} {r['cpu'] / r['bare']:10.1%} {r['ratio']:16.3f} "
              f"{r['rss']:13.1f}", flush=True)

if __name__ == "__main__":
    main()
