import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# Built gallery cases are cached inside the checkout (ignored by git), so a fresh clone builds cold.
os.environ.setdefault("WHYZERO_CACHE_DIR", str(ROOT / ".whyzero-cache"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Runs and shared sessions the app keeps go to a store inside the checkout (ignored by git), never the user's own.
os.environ.setdefault("WHYZERO_DATA_DIR", str(ROOT / ".whyzero-cache" / "data"))


@pytest.fixture(scope="session")
def built_cases():
    """Gallery cases built once per session."""
    from whyzero import gallery

    cache: dict = {}

    def get(name):
        if name not in cache:
            cache[name] = gallery.build(name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def diagnosed(built_cases):
    import whyzero
    from whyzero import gallery

    cache: dict = {}

    def get(name):
        if name not in cache:
            b = built_cases(name)
            cache[name] = whyzero.diagnose(b.model, b.inputs, labels=b.labels, masks=b.masks,
                                           train_inputs=b.train_inputs, trust_model=gallery.get(name).trust)
        return cache[name]

    return get


def predictions(model, x):
    return np.asarray(model.predict(np.asarray(x, np.float32), verbose=0))
