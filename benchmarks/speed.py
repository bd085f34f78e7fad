"""Speed benchmark (issue 13): whyzero against plain TensorFlow on the same model and batch, ratios side by side.

    python benchmarks/speed.py [--models resnet50,mobilenetv2,deep_mlp,mobilenetv2_raw,resnet50_raw,efficientnetb0,
                                         vit,unet]
                               [--samples 32,128,512] [--repeat 3] [--small]

``efficientnetb0`` is Keras' EfficientNetB0 (untrained); ``vit`` a small Vision Transformer built from Keras layers
(16x16 patches of 224x224 images, 6 blocks of ``MultiHeadAttention`` and an MLP, ``LayerNormalization``); ``unet``
a 4-level U-Net with BatchNorm on 128x128 images, diagnosed with masks (its baseline's loss is per pixel).

``mobilenetv2_raw`` (``resnet50_raw``) is MobileNetV2 (ResNet50) with BatchNorm statistics as if trained, fed raw
0..255 pixels: the diagnosis then also runs the preprocessing what-if and re-runs the model under the fix (the
proof).

Each measurement runs in its own process (peak RSS is per process):
- ``baseline``: one forward+backward pass (GradientTape, chunks of 16) over the batch;
- ``whyzero``: ``whyzero.diagnose`` on the same model and batch, with its stages.
``--small`` also times the CLI on two exported gallery cases against
``python -c "import keras; m = keras.saving.load_model(M); m.predict(x)"`` and the commands that need no
model (``whyzero --help``, ``whyzero gallery list``).  Not a test: absolute times vary from run to run (on a
shared 2-core machine by 20% and more), so each measurement is repeated, baseline and whyzero in turn, and the
fastest of each is kept (as ``timeit`` does); the CPU time each process was given is reported beside it (on a
virtual machine whose host is busy, wall time also counts the time the host ran others: up to 20% of it).
whyzero's bytecode is compiled first, as an installed package's is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np
kind, samples, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import whyzero._tf  # quiet TensorFlow
import keras
keras.utils.set_random_seed(0)
if kind.startswith("resnet50"):
    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3), classes=10)
    shape = (224, 224, 3)
elif kind.startswith("mobilenetv2"):
    model = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=10)
    shape = (224, 224, 3)
elif kind == "efficientnetb0":
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(224, 224, 3), classes=10)
    shape = (224, 224, 3)
elif kind == "vit":
    L = keras.layers
    inputs = keras.Input((224, 224, 3))
    x = L.Reshape((196, 192))(L.Conv2D(192, 16, strides=16, name="patches")(inputs))
    for i in range(6):
        h = L.LayerNormalization(name=f"ln_a{i}")(x)
        x = L.Add()([x, L.MultiHeadAttention(3, 64, name=f"attention{i}")(h, h)])
        h = L.LayerNormalization(name=f"ln_b{i}")(x)
        x = L.Add()([x, L.Dense(192, name=f"mlp_out{i}")(L.Dense(384, activation="gelu", name=f"mlp_in{i}")(h))])
    x = L.GlobalAveragePooling1D()(L.LayerNormalization(name="ln_final")(x))
    model = keras.Model(inputs, L.Dense(10, activation="softmax", name="head")(x))
    shape = (224, 224, 3)
elif kind == "unet":
    L = keras.layers
    inputs = keras.Input((128, 128, 3))
    x, skips = inputs, []
    for width in (16, 32, 64, 128):
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(x)))
        skips.append(x)
        x = L.MaxPooling2D()(x)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(256, 3, padding="same")(x)))
    for width, skip in zip((128, 64, 32, 16), reversed(skips)):
        x = L.Concatenate()([L.Conv2DTranspose(width, 2, strides=2)(x), skip])
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(width, 3, padding="same")(x)))
    model = keras.Model(inputs, L.Conv2D(1, 1, activation="sigmoid", name="mask")(x))
    shape = (128, 128, 3)
else:
    inputs = keras.Input((256,))
    x = inputs
    for i in range(24):
        x = keras.layers.Dense(256, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    shape = (256,)
model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy" if kind == "unet" else
              "sparse_categorical_crossentropy")
# float32 from the start: a float64 batch converted would put its own peak (3x the batch) into both processes' RSS
batch = np.random.default_rng(0).random((samples, *shape), dtype=np.float32)
masks = None
if kind == "unet":  # a bright blob per image: its mask
    yy, xx = np.mgrid[:128, :128]
    centres = np.random.default_rng(1).uniform(32, 96, (samples, 2))
    masks = ((yy[None] - centres[:, :1, None]) ** 2 + (xx[None] - centres[:, 1:, None]) ** 2 < 400).astype(np.int64)
    batch[..., 0] += masks
if kind.endswith("_raw"):  # BatchNorm statistics as if trained, fed raw 0..255 pixels: what-if and a proof run
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 0.5, np.float32))
    batch *= 255
labels = np.arange(samples) % 10 if masks is None else masks[..., None].astype(np.float32)
start, cpu_start = time.perf_counter(), time.process_time()
stages = []
if mode == "baseline":
    import tensorflow as tf
    loss_fn = keras.losses.BinaryCrossentropy() if kind == "unet" else keras.losses.SparseCategoricalCrossentropy()
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=False))
        return tape.gradient(loss, model.trainable_variables)
    for i in range(0, samples, 16):
        step(tf.constant(batch[i:i + 16]), tf.constant(labels[i:i + 16]))
else:
    import whyzero
    def progress(stage, fraction):
        stages.append((stage, round(time.perf_counter() - start, 1), round(fraction, 2)))
    found = whyzero.diagnose(model, batch, labels=None if masks is not None else labels, masks=masks,
                             progress=progress)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024,
                  "cpu_s": time.process_time() - cpu_start,
                  "batch_mb": batch.nbytes / 2**20,
                  "stages": [s for s in stages if s[2] in (0.0, 1.0)],
                  "findings": [f.cause for f in found.findings][:3] if mode != "baseline" else []}))
"""


def child(kind: str, samples: int, mode: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(samples), mode], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return time.perf_counter() - start


def small_models() -> None:
    from whyzero import gallery

    whyzero = [sys.executable, "-m", "whyzero.cli"]
    help_s, list_s = timed(whyzero + ["--help"]), timed(whyzero + ["gallery", "list"])
    print(f"whyzero --help: {help_s:.2f} s; gallery list: {list_s:.2f} s")
    for name in ("binary_healthy", "photos_wrong_normalization"):
        folder = tempfile.mkdtemp()
        files = gallery.export(name, folder)
        plain = timed([sys.executable, "-c", "import sys, numpy as np, keras; "
                       "m = keras.saving.load_model(sys.argv[1]); m.predict(np.load(sys.argv[2]), verbose=0)",
                       files["model"], files["inputs"]])
        args = ["diagnose", files["model"], "--inputs", files["inputs"], "--quiet"]
        if "labels" in files:
            args += ["--labels", files["labels"]]
        ours = timed(whyzero + args)
        print(f"{name}: whyzero diagnose {ours:.1f} s, keras load+predict {plain:.1f} s, ratio {ours / plain:.2f}x")


def measure(kind: str, samples: int, repeat: int) -> None:
    """Baseline and whyzero in turn, ``repeat`` times each; the fastest of each is reported."""
    runs: dict[str, list[dict]] = {"baseline": [], "whyzero": []}
    for _ in range(max(1, repeat)):
        for mode in runs:
            runs[mode].append(child(kind, samples, mode))
    base, ours = (min(runs[mode], key=lambda r: r["wall_s"]) for mode in ("baseline", "whyzero"))

    def cpu(mode: str) -> float:  # the CPU time the process was given: steadier than wall time when the host is busy
        return min(r["cpu_s"] for r in runs[mode])

    print(f"{kind} ({samples} samples): forward+backward {base['wall_s']:.1f} s / "
          f"{base['peak_rss_mb']:.0f} MB, whyzero {ours['wall_s']:.1f} s / {ours['peak_rss_mb']:.0f} MB "
          f"({ours['peak_rss_mb'] - ours['batch_mb']:.0f} MB beyond the {ours['batch_mb']:.0f} MB batch): "
          f"time {ours['wall_s'] / base['wall_s']:.2f}x (CPU time {cpu('whyzero') / cpu('baseline'):.2f}x), "
          f"memory {ours['peak_rss_mb'] / base['peak_rss_mb']:.2f}x", flush=True)
    print("    all runs (wall s / CPU s): " + "; ".join(f"{mode} " + ", ".join(
        f"{r['wall_s']:.2f}/{r['cpu_s']:.2f}" for r in rs) for mode, rs in runs.items()))
    print(f"    stages (start s): {ours['stages']}")
    if ours.get("findings"):
        print(f"    findings: {ours['findings']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="resnet50,mobilenetv2,deep_mlp,mobilenetv2_raw")
    parser.add_argument("--samples", default="32", help="batch sizes, comma-separated (e.g. 32,128,512)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args()
    # timed as installed: pip compiles a package's bytecode when it installs it, but an editable install under
    # PYTHONDONTWRITEBYTECODE compiles whyzero's sources on every import (~0.05 s of each run)
    import compileall

    import whyzero

    compileall.compile_dir(os.path.dirname(whyzero.__file__), quiet=1)
    for kind in args.models.split(","):
        for samples in (int(n) for n in args.samples.split(",")):
            measure(kind, samples, args.repeat)
    if args.small:
        small_models()


if __name__ == "__main__":
    main()
