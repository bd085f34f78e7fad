"""Writes the app's precomputed demo diagnosis: `python scripts/make_demo.py` after a change to the checks."""

import whyzero
from whyzero import gallery
from whyzero.demo import DEMO_CASE, FOLDER

built = gallery.build(DEMO_CASE)
d = whyzero.diagnose(built.model, built.inputs, labels=built.labels, masks=built.masks,
                     train_inputs=built.train_inputs, trust_model=gallery.get(DEMO_CASE).trust)
(FOLDER / f"{DEMO_CASE}.json").write_text(d.to_json(), encoding="utf-8")
print(f"wrote {FOLDER / f'{DEMO_CASE}.json'}: {len(d.findings)} findings")
