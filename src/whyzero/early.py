"""Work of a diagnosis that needs the model and the batch but not the probe, done on a second thread while the
probe's pass is traced and set up.

Tracing runs Python on one core and leaves the other idle (MobileNetV2: ~2.3 s), and so, mostly, does setting the
traced pass up on its first chunk (~1.2 s of its ~2 s): the batch's statistics (MobileNetV2's images: 0.09 s at 32,
~1.5 s at 512) are worked out beside the trace, the weights' table and the preprocessing what-if's memory scores
(MobileNetV2: 0.06 s and 0.55 s) beside the first chunk.  The scores' cut pass is traced on the caller's thread
before the probe's: while the probe's pass is traced the layers' calls are patched to record them
(``capturing``), and a second trace through them would record into the probe's.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from whyzero.memory import MemoryProbe, memory_scores, whatif_samples
from whyzero.model_info import weight_table
from whyzero.probes.inputs import InputStats
from whyzero.probes.traced import without_graph_rewrites


class EarlyWork:
    """The weights' table, the batch's statistics (``stats()``) and the what-if's memory scores, started now on a
    thread of their own.  ``weights``, ``input_stats`` and ``scores`` give them, or None where they failed on the
    thread (the caller works them out as before).

    The table and the scores wait for ``traced()``: the probe's pass traced.  Tracing holds Python's lock, and
    they call into numpy and TensorFlow many times, each time taking the lock back: beside the trace they slowed it
    by half their own time (MobileNetV2 fed raw pixels: 2.2 → 2.8 s).  Once it is traced, the pass's first chunk
    is set up on mostly one core, outside Python: they fit beside it."""

    def __init__(self, model, batch: np.ndarray, train_stats: InputStats | None, chunk: int,
                 raw_images: np.ndarray | None, stats: Callable[[], InputStats]) -> None:
        self.probe = MemoryProbe(model, train_stats, chunk=chunk)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whyzero-early")
        self._traced = threading.Event()
        self._stats = self._pool.submit(stats)  # big numpy reductions: they hold Python's lock little
        self._weights = self._pool.submit(self._after_trace, weight_table, model)
        self._scores: Future | None = None
        if self.probe.source is not None and self.probe.prepare():
            self._scores = self._pool.submit(self._after_trace, memory_scores, batch, self.probe,
                                             whatif_samples(chunk), raw_images)
        self._pool.shutdown(wait=False)

    def _after_trace(self, work: Callable, *args):
        self._traced.wait()
        return work(*args)

    def traced(self) -> None:
        """The probe's pass is traced (or will not be): the table and the scores may start."""
        self._traced.set()

    def weights(self) -> list[dict] | None:
        self.traced()
        return _result(self._weights)

    def scores(self) -> tuple[str, dict] | None:
        self.traced()
        return None if self._scores is None else _result(self._scores)

    def input_stats(self) -> InputStats | None:
        return _result(self._stats)

    def wait(self) -> None:
        self.traced()
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
