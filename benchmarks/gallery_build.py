"""Benchmark: build the whole gallery from a cold cache, then again from the warm cache.

    python benchmarks/gallery_build.py
"""

import json
import os
import tempfile
import time


def main() -> None:
    os.environ["WHYZERO_CACHE_DIR"] = tempfile.mkdtemp(prefix="whyzero-gallery-")
    from whyzero import gallery

    timings = {}
    start = time.perf_counter()
    for name in gallery.names():
        t = time.perf_counter()
        gallery.build(name)
        timings[name] = round(time.perf_counter() - t, 1)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    for name in gallery.names():
        gallery.build(name)
    warm = time.perf_counter() - start
    print(json.dumps({"cases": len(timings), "cold_s": round(cold, 1), "warm_s": round(warm, 1),
                      "per_case_cold_s": timings}, indent=2))


if __name__ == "__main__":
    main()
