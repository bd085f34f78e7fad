"""Work of a diagnosis that needs the model and the batch but not the probe, done on a second thread while the
probe's pass is traced.

Tracing runs Python on one core and leaves the other idle (MobileNetV2: ~2.5 s, then ~1.2 s setting the traced
pass up); the weights' table, the preprocessing what-if's memory scores (ResNet50: 0.25 s and 0.85 s) and the
batch's statistics (MobileNetV2's images: 0.09 s at 32, ~1.5 s at 512) fit in that time.  The scores' cut pass
is traced on the caller's thread before the probe's: while the probe's pass is traced the layers' calls are patched
to record them (``capturing``), and a second trace through them would record into the probe's.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from whyzero.memory import MemoryProbe, memory_scores, whatif_samples
from whyzero.model_info import weight_table
from whyzero.probes.inputs import InputStats
from whyzero.probes.traced import without_graph_rewrites


class EarlyWork:
    """The weights' table, the what-if's memory scores and the batch's statistics (``stats()``), started now on a
    thread of their own.  ``weights``, ``scores`` and ``input_stats`` give them, or None where they failed on the
    thread (the caller works them out as before)."""

    def __init__(self, model, batch: np.ndarray, train_stats: InputStats | None, chunk: int,
                 raw_images: np.ndarray | None, stats: Callable[[], InputStats]) -> None:
        self.probe = MemoryProbe(model, train_stats, chunk=chunk)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whyzero-early")
        self._weights = self._pool.submit(weight_table, model)
        self._scores: Future | None = None
        if self.probe.source is not None and self.probe.prepare():
            self._scores = self._pool.submit(memory_scores, batch, self.probe, whatif_samples(chunk), raw_images)
        self._stats = self._pool.submit(stats)  # last: the probe needs it last
        self._pool.shutdown(wait=False)

    def weights(self) -> list[dict] | None:
        return _result(self._weights)

    def scores(self) -> tuple[str, dict] | None:
        return None if self._scores is None else _result(self._scores)

    def input_stats(self) -> InputStats | None:
        return _result(self._stats)

    def wait(self) -> None:
        self._pool.shutdown(wait=True)


def _result(future: Future):
    try:
        return future.result()
    except Exception:  # noqa: BLE001 - worked out again on the caller's thread, where its error shows as before
        return None


@contextmanager
def alongside(wanted: bool, start: Callable[[], EarlyWork]) -> Iterator[EarlyWork | None]:
    """``start()``'s work alongside the block, where ``wanted``.  TensorFlow's graph rewrites stay off until the
    thread is done: a pass set up while they are off runs without them (``without_graph_rewrites``), and the
    thread's own switch, set and restored on either side of another thread's, would otherwise turn them back on
    for the probe's pass."""
    if not wanted:
        yield None
        return
    with without_graph_rewrites():
        try:
            early = start()
        except Exception:  # noqa: BLE001 - what could not start is worked out after the probe, as it was before
            early = None
        try:
            yield early
        finally:
            if early is not None:
                early.wait()
