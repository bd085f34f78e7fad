"""Writes the app's precomputed demo diagnosis and demo training run: `python scripts/make_demo.py` after a change
to the checks."""

import gzip
import shutil
import tempfile
from pathlib import Path

import whyzero
from whyzero import gallery
from whyzero.demo import DEMO_CASE, DEMO_RECIPE, FOLDER, timeline_path
from whyzero.gallery.recipes import train

built = gallery.build(DEMO_CASE)
d = whyzero.diagnose(built.model, built.inputs, labels=built.labels, masks=built.masks,
                     train_inputs=built.train_inputs, trust_model=gallery.get(DEMO_CASE).trust)
(FOLDER / f"{DEMO_CASE}.json").write_text(d.to_json(), encoding="utf-8")
print(f"wrote {FOLDER / f'{DEMO_CASE}.json'}: {len(d.findings)} findings")

with tempfile.TemporaryDirectory() as folder:
    monitor = train(DEMO_RECIPE, folder)
    with open(monitor.path, "rb") as source, gzip.open(timeline_path(), "wb", compresslevel=9) as target:
        shutil.copyfileobj(source, target)
print(f"wrote {timeline_path()}: {Path(timeline_path()).stat().st_size} bytes")
