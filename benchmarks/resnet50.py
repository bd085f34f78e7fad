"""Benchmark: diagnose ResNet50 (weights=None) on 32 images of 224x224 and measure time and peak memory.

    python benchmarks/resnet50.py [--samples 32]

Prints the wall time, the process's peak resident memory, the memory the model alone takes,
and what collecting every layer's activations for the batch would take (float32).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    import keras

    import whyzero

    model = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3), classes=10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    batch = np.random.default_rng(0).uniform(0, 255, (args.samples, 224, 224, 3)).astype(np.float32)
    labels = np.arange(args.samples) % 10
    after_model = rss_mb()
    activations = sum(int(np.prod(l.output.shape[1:])) for l in model.layers[1:]) * args.samples * 4 / 2**20
    start = time.perf_counter()
    stages = []
    d = whyzero.diagnose(model, batch, labels=labels,
                         progress=lambda s, f: stages.append((s, round(time.perf_counter() - start, 1), f)))
    wall = time.perf_counter() - start
    print(json.dumps({
        "samples": args.samples, "layers": len(model.layers), "params": model.count_params(),
        "wall_s": round(wall, 1), "peak_rss_mb": round(rss_mb(), 0),
        "rss_after_model_and_batch_mb": round(after_model, 0),
        "all_activations_mb": round(activations, 0), "diagnosis_json_kb": round(len(d.to_json()) / 1024, 0),
        "findings": sorted(d.causes("info")),
    }, indent=2))


if __name__ == "__main__":
    main()
