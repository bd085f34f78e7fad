"""The Beam side of ``whyzero stats --runner``: a ``CombineFn`` over ``InputStats`` (needs ``whyzero[beam]``).

The summaries of the dataset's parts (``whyzero.dataset_stats.summarize``) merge by addition on whichever worker
holds them; the result is the one a single process computes.
"""

from __future__ import annotations

import apache_beam as beam

from whyzero.probes.inputs import InputStats


class StatsCombineFn(beam.CombineFn):
    """Merges ``InputStats`` (moments, extremes, the fixed-edge histogram, integer and NaN counts) across workers."""

    def create_accumulator(self) -> InputStats:
        return InputStats()

    def add_input(self, accumulator: InputStats, stats: InputStats) -> InputStats:
        return accumulator.merge(stats)

    def merge_accumulators(self, accumulators) -> InputStats:
        total = InputStats()
        for accumulator in accumulators:
            total.merge(accumulator)
        return total

    def extract_output(self, accumulator: InputStats) -> InputStats:
        return accumulator
