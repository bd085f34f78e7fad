"""Speed benchmark (issue 13, 27): whyzero against plain TensorFlow on the same model and batch, ratios side by side.

    python benchmarks/speed.py            # everything below, in one run, and the table the README shows
    python benchmarks/speed.py --models mobilenetv2 --sweep none --no-small   # a part of it

``--models`` (default all eight): ``resnet50``, ``mobilenetv2``, ``mobilenetv2_raw``, ``resnet50_raw``, ``deep_mlp``,
``efficientnetb0``, ``vit``, ``unet``, at ``--samples`` (32).  ``efficientnetb0`` is Keras' EfficientNetB0
(untrained); ``vit`` a small Vision Transformer built from Keras layers (16x16 patches of 224x224 images, 6 blocks of
``MultiHeadAttention`` and an MLP, ``LayerNormalization``); ``unet`` a 4-level U-Net with BatchNorm on 128x128
images, diagnosed with masks (its baseline's loss is per pixel).  ``mobilenetv2_raw`` (``resnet50_raw``) is
MobileNetV2 (ResNet50) with BatchNorm statistics as if trained, fed raw 0..255 pixels: the diagnosis then also runs
the preprocessing what-if and re-runs the model under the fix (the proof).

``--sweep`` (default ``mobilenetv2:32,128,512``): one model at growing batch sizes, ``--sweep-repeat`` (2) runs each
(one run of MobileNetV2 at 512 read 1.82x in a busy minute where two more read 1.24x).
The CLI on two exported gallery cases against ``python -c "import keras; m = keras.saving.load_model(M);
m.predict(x)"`` and the commands that need no model (``whyzero --help``, ``whyzero gallery list``) unless
``--no-small``.

Each measurement runs in its own process (peak RSS is per process):
- ``baseline``: one forward+backward pass (GradientTape, chunks of 16) over the batch;
- ``whyzero``: ``whyzero.diagnose`` on the same model and batch, with its stages ("probe alone": the stage
  "probing layers" against the baseline's whole pass).
Not a test: absolute times vary from run to run (on a shared 2-core machine by 20% and more), so each measurement
is repeated (``--repeat``, 3), baseline and whyzero in turn, and the fastest of each is kept (as ``timeit`` does);
the CPU time each process was given is reported beside it (on a virtual machine whose host is busy, wall time also
counts the time the host ran others), and the share of the run's CPU time the host stole (``/proc/stat``).
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
        stages.append((stage, round(time.perf_counter() - start, 2), round(fraction, 2)))
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


def probe_seconds(stages: list) -> float | None:
    """The probe's own time: from the stage "probing layers" starting to its last step done."""
    begun = [t for name, t, f in stages if name.startswith("probing layers") and f == 0.0]
    done = [t for name, t, f in stages if name.startswith("probing layers") and f == 1.0]
    return done[-1] - begun[0] if begun and done else None


def measure(kind: str, samples: int, repeat: int) -> dict:
    """Baseline and whyzero in turn, ``repeat`` times each; the fastest of each is reported and returned as a row."""
    runs: dict[str, list[dict]] = {"baseline": [], "whyzero": []}
    for _ in range(max(1, repeat)):
        for mode in runs:
            runs[mode].append(child(kind, samples, mode))
    base, ours = (min(runs[mode], key=lambda r: r["wall_s"]) for mode in ("baseline", "whyzero"))
    cpu = {mode: min(r["cpu_s"] for r in rs) for mode, rs in runs.items()}  # steadier than wall time on a busy host
    probes = [p for p in (probe_seconds(r["stages"]) for r in runs["whyzero"]) if p is not None]
    row = {"kind": kind, "samples": samples, "base_s": base["wall_s"], "ours_s": ours["wall_s"],
           "time": ours["wall_s"] / base["wall_s"], "cpu": cpu["whyzero"] / cpu["baseline"],
           "probe": min(probes) / base["wall_s"] if probes else None,
           "memory": ours["peak_rss_mb"] / base["peak_rss_mb"], "beyond_mb": ours["peak_rss_mb"] - ours["batch_mb"]}
    print(f"{kind} ({samples} samples): forward+backward {base['wall_s']:.1f} s / "
          f"{base['peak_rss_mb']:.0f} MB, whyzero {ours['wall_s']:.1f} s / {ours['peak_rss_mb']:.0f} MB "
          f"({row['beyond_mb']:.0f} MB beyond the {ours['batch_mb']:.0f} MB batch): "
          f"time {row['time']:.2f}x (CPU time {row['cpu']:.2f}x), memory {row['memory']:.2f}x", flush=True)
    print("    all runs (wall s / CPU s): " + "; ".join(f"{mode} " + ", ".join(
        f"{r['wall_s']:.2f}/{r['cpu_s']:.2f}" for r in rs) for mode, rs in runs.items()))
    print(f"    stages (start s): {ours['stages']}")
    if ours.get("findings"):
        print(f"    findings: {ours['findings']}", flush=True)
    return row


NAMES = {"mobilenetv2_raw": "MobileNetV2 fed raw pixels (what-if + proof)",
         "resnet50_raw": "ResNet50 fed raw pixels (what-if + proof)", "unet": "U-Net with masks",
         "mobilenetv2": "MobileNetV2", "resnet50": "ResNet50",
         "efficientnetb0": "EfficientNetB0 (a double-normalization proof)",
         "vit": "small ViT (`MultiHeadAttention`, `LayerNormalization`)", "deep_mlp": "deep MLP"}


def table(rows: list[dict]) -> str:
    """The rows as the README's Markdown table."""
    lines = ["| model | samples | forward+backward | whyzero | time | CPU time | probe alone | peak memory |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        probe = "" if r["probe"] is None else f"{r['probe']:.2f}x"
        name = NAMES.get(r["kind"], r["kind"])
        lines.append(f"| {name} | {r['samples']} | {r['base_s']:.1f} s | {r['ours_s']:.1f} s | **{r['time']:.2f}x** "
                     f"| {r['cpu']:.2f}x | {probe} | {r['memory']:.2f}x "
                     f"({r['beyond_mb']:.0f} MB beyond the batch) |")
    return "\n".join(lines)


def machine() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "unknown CPU")
    except OSError:
        name = "unknown CPU"
    return f"{os.cpu_count()} cores, {name}"


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, all) CPU ticks since boot, from ``/proc/stat``; None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(NAMES))
    parser.add_argument("--samples", default="32", help="batch sizes for --models, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest counts")
    parser.add_argument("--sweep", default="mobilenetv2:32,128,512",
                        help="MODEL:N,N,... one model at growing batch sizes ('none': no sweep)")
    parser.add_argument("--sweep-repeat", type=int, default=2)
    parser.add_argument("--no-small", action="store_true", help="leave out the CLI on small models")
    args = parser.parse_args()
    # timed as installed: pip compiles a package's bytecode when it installs it, but an editable install under
    # PYTHONDONTWRITEBYTECODE compiles whyzero's sources on every import (~0.05 s of each run)
    import compileall

    import whyzero

    compileall.compile_dir(os.path.dirname(whyzero.__file__), quiet=1)
    began, ticks = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cpu_ticks()
    print(f"{machine()}; started {began}", flush=True)
    rows = [measure(kind, int(n), args.repeat) for kind in args.models.split(",") if kind
            for n in args.samples.split(",")]
    sweep = []
    if args.sweep != "none":
        kind, sizes = args.sweep.split(":")
        done = {(r["kind"], r["samples"]): r for r in rows}  # measured above already: not again
        sweep = [done.get((kind, int(n))) or measure(kind, int(n), args.sweep_repeat) for n in sizes.split(",")]
    if not args.no_small:
        small_models()
    print(f"\n{machine()}; {began}, --repeat {args.repeat}")
    ended = cpu_ticks()
    if ticks and ended and ended[1] > ticks[1]:
        print(f"stolen by the host: {100 * (ended[0] - ticks[0]) / (ended[1] - ticks[1]):.1f}% of the CPU time")
    print(table(rows + [r for r in sweep if r not in rows]))
    if len(sweep) > 1:
        first, last = sweep[0], sweep[-1]
        print(f"\n{first['kind']} from {first['samples']} to {last['samples']} samples: the pass "
              f"{last['base_s'] / first['base_s']:.2f}x, whyzero {last['ours_s'] / first['ours_s']:.2f}x; "
              f"whyzero's peak beyond the batch {first['beyond_mb']:.0f} -> {last['beyond_mb']:.0f} MB "
              f"({100 * (last['beyond_mb'] / first['beyond_mb'] - 1):+.0f}%)")


if __name__ == "__main__":
    main()
