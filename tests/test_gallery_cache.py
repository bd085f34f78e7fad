"""Built gallery cases are cached on disk and load back identical."""

import numpy as np

from whyzero import gallery


def test_second_build_loads_the_cached_case(tmp_path, monkeypatch):
    monkeypatch.setenv("WHYZERO_CACHE_DIR", str(tmp_path))
    first = gallery.build("binary_shifted_threshold")
    folder = gallery.cache_folder("binary_shifted_threshold")
    assert (folder / "done").exists() and (folder / "model.keras").exists()
    second = gallery.build("binary_shifted_threshold")
    assert np.array_equal(first.inputs, second.inputs) and np.array_equal(first.labels, second.labels)
    assert np.allclose(first.model.predict(first.inputs, verbose=0), second.model.predict(second.inputs, verbose=0))


def test_unknown_case_names_the_list():
    import pytest

    from whyzero.errors import WhyzeroError

    with pytest.raises(WhyzeroError, match="whyzero gallery list.*Received: 'nope'"):
        gallery.build("nope")
