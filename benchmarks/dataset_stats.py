"""`whyzero stats` at scale: throughput in one process and on Beam's DirectRunner at 2 workers, side by side, and
peak memory at two dataset sizes (it must not grow with the dataset).

    python benchmarks/dataset_stats.py [--rows 1000000] [--images 50000] [--dir /tmp/whyzero-bench]

Generates .npy shards of tabular rows (16 features, 100,000 rows a shard) and a folder of 32x32 PNG images,
then times `whyzero stats` over half and all of each, in this process and with
`--runner DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing`.  Peak memory is the
largest resident set of the command and its worker processes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stderr)
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""
BEAM = ["--runner", "DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def generate(folder: Path, rows: int, images: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "rows").mkdir(parents=True, exist_ok=True)
    for i in range(int(np.ceil(rows / 100_000))):
        path = folder / "rows" / f"rows-{i:03d}.npy"
        if not path.exists():
            np.save(path, rng.lognormal(0, 1.5, (min(100_000, rows - i * 100_000), 16)).astype(np.float32))
    (folder / "images").mkdir(exist_ok=True)
    for i in range(images):
        path = folder / "images" / f"{i:06d}.png"
        if not path.exists():
            Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(path, compress_level=1)


def measure(sources: list[str], extra: list[str], out: Path) -> tuple[float, float]:
    cmd = [sys.executable, "-m", "whyzero.cli", "stats", *sources, "--out", str(out), *extra]
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=True)
    seconds, peak = (float(v) for v in done.stdout.split())
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--dir", default="/tmp/whyzero-bench")
    args = parser.parse_args()
    folder = Path(args.dir)
    started = time.perf_counter()
    generate(folder, args.rows, args.images)
    print(f"generated in {time.perf_counter() - started:.0f} s: {args.rows:,} rows, {args.images:,} images")
    shards = sorted(str(p) for p in (folder / "rows").glob("*.npy"))
    pngs = sorted(str(p) for p in (folder / "images").glob("*.png"))
    half = folder / "half-images"
    half.mkdir(exist_ok=True)
    for p in pngs[:len(pngs) // 2]:
        link = half / Path(p).name
        if not link.exists():
            link.symlink_to(p)
    cases = [("rows", "half", shards[:len(shards) // 2], args.rows // 2, []),
             ("rows", "all", shards, args.rows, []),
             ("images", "half", [str(half)], args.images // 2, ["--preprocess", "unit"]),
             ("images", "all", [str(folder / "images")], args.images, ["--preprocess", "unit"])]
    print(f"{'data':7s} {'size':>9s} {'one process /s':>15s} {'peak MB':>8s} {'Beam 2 workers /s':>18s} "
          f"{'peak MB':>8s}")
    results = []
    for kind, size, sources, n, extra in cases:
        one_s, one_peak = measure(sources, extra, folder / "one.json")
        beam_s, beam_peak = measure(sources, extra + BEAM, folder / "beam.json")
        samples = json.loads((folder / "one.json").read_text())["samples"]
        assert samples == json.loads((folder / "beam.json").read_text())["samples"] == n
        print(f"{kind:7s} {n:9,d} {n / one_s:15,.0f} {one_peak:8.0f} {n / beam_s:18,.0f} {beam_peak:8.0f}")
        results.append({"data": kind, "size": size, "samples": n, "one_process_per_s": n / one_s,
                        "one_process_peak_mb": one_peak, "beam_per_s": n / beam_s, "beam_peak_mb": beam_peak})
    (folder / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
