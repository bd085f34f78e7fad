"""Training statistics over a whole dataset: ``whyzero stats SOURCE... --out STATS.json [--runner R]``.

A dataset is split into parts that can be read on their own (a range of rows of an ``.npy`` shard, a CSV file,
a row group of a Parquet file, a TFRecord file, a group of image files); each part is read in batches, and each
batch is summarized by ``InputStats.update``, the code that summarizes the batch under diagnosis.  Summaries
merge by addition (``InputStats.merge``), so the parts can be read anywhere: in this process, one after the
other, or on Apache Beam (``StatsCombineFn``) by the DirectRunner's workers, Flink, Spark or Dataflow.  Both
read the same parts in the same batches, so they agree: moments up to float rounding, histograms and counts
exactly.  Memory holds one batch and one summary, whatever the dataset's size.

Imports inside functions are deliberately lazy: Beam, pandas, pyarrow and TensorFlow load only for the sources
and runners that need them.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from whyzero.errors import WhyzeroError, first_line
from whyzero.loading.data import IMAGE_SUFFIXES
from whyzero.probes.inputs import InputStats

# Rows of a tabular part read at a time, rows of an .npy part, image files in one part and one batch.
BATCH_ROWS = 4096
NPY_PART_ROWS = 1 << 16
IMAGE_PART = 256
IMAGE_BATCH = 64
RUNNERS = ("DirectRunner", "FlinkRunner", "SparkRunner", "DataflowRunner", "PortableRunner")
WHOLE = (".npz", ".zip")  # read whole, as a diagnosis reads them: one part


@dataclass(frozen=True)
class Part:
    """A piece of the dataset read on its own: a kind, the files, and for an .npy or Parquet file which rows."""

    kind: str
    paths: tuple[str, ...]
    start: int = 0
    stop: int | None = None


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in (".tfrecord", ".tfrecords") or path.name.endswith((".tfrecord.gz", ".tfrecords.gz")):
        return "tfrecord"
    return {".npy": "npy", ".csv": "csv", ".parquet": "parquet"}.get(suffix) or \
        ("image" if suffix in IMAGE_SUFFIXES else "whole" if suffix in WHOLE else None)


def parts_of(sources: list[str]) -> list[Part]:
    """The dataset's parts: files, globs and folders (of images, or of any of the file kinds) expanded, in sorted
    order.

    Raises:
        WhyzeroError: a source that matches no file, or files of no kind whyzero reads.
    """
    files: list[Path] = []
    for source in sources:
        matched = sorted(Path(p) for p in glob.glob(source)) if any(c in source for c in "*?[") else [Path(source)]
        if not matched or not matched[0].exists():
            raise WhyzeroError(f"No file matches that source. Received: {source}")
        for path in matched:
            files.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
    parts: list[Part] = []
    kinds = [(path, _kind(path)) for path in files]
    images = [str(path) for path, kind in kinds if kind == "image"]
    for path, kind in kinds:
        if kind == "npy":
            rows = len(np.load(path, mmap_mode="r"))
            parts.extend(Part("npy", (str(path),), s, min(s + NPY_PART_ROWS, rows)) for s in range(0, rows,
                                                                                                    NPY_PART_ROWS))
        elif kind == "parquet":
            import pyarrow.parquet as pq

            groups = pq.ParquetFile(path).metadata.num_row_groups
            parts.extend(Part("parquet", (str(path),), g, g + 1) for g in range(groups))
        elif kind in ("csv", "tfrecord", "whole"):
            parts.append(Part(kind, (str(path),)))
    parts.extend(Part("image", tuple(images[i:i + IMAGE_PART])) for i in range(0, len(images), IMAGE_PART))
    if not parts:
        names = ", ".join(sorted({p.suffix or p.name for p in files})[:8])
        raise WhyzeroError("Expected .npy, .csv, .parquet, TFRecord or image files (or .npz/.zip, read whole). "
                           f"Received: {names or 'no files'}")
    return parts


def read(part: Part, preprocess: str = "none", feature: str | None = None) -> Iterator[np.ndarray]:
    """The part's samples, a batch at a time, as a diagnosis would be fed them."""
    path = part.paths[0]
    if part.kind == "npy":
        array = np.load(path, mmap_mode="r")  # an .npy part always names its rows (``parts_of``)
        for start in range(part.start, part.stop, BATCH_ROWS):
            yield np.asarray(array[start:min(start + BATCH_ROWS, part.stop)])
    elif part.kind == "csv":
        yield from _csv(path)
    elif part.kind == "parquet":
        yield from _parquet(path, part.start)
    elif part.kind == "tfrecord":
        yield from _tfrecord(path, feature, preprocess)
    elif part.kind == "image":
        from whyzero.loading.data import load_inputs

        for i in range(0, len(part.paths), IMAGE_BATCH):
            yield load_inputs(list(part.paths[i:i + IMAGE_BATCH]), preprocess=preprocess).array
    else:
        from whyzero.loading.data import load_inputs

        yield load_inputs(path, preprocess=preprocess).array


def _csv(path: str) -> Iterator[np.ndarray]:
    import pandas as pd

    from whyzero.loading.data import _is_number

    try:
        first = pd.read_csv(path, nrows=1)
        header = None if all(_is_number(str(c)) for c in first.columns) else "infer"
        for frame in pd.read_csv(path, chunksize=BATCH_ROWS, header=header):
            yield frame.select_dtypes("number").to_numpy(np.float32)
    except (ValueError, OSError) as err:
        raise WhyzeroError(f"Could not read the CSV ({first_line(err, 150)}). Received: {Path(path).name}") from None


def _parquet(path: str, group: int) -> Iterator[np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read_row_group(group)
    numeric = [name for name, kind in zip(table.column_names, table.schema.types)
               if str(kind).startswith(("int", "uint", "float", "double", "halffloat", "bool"))]
    frame = table.select(numeric).to_pandas()
    for start in range(0, len(frame), BATCH_ROWS):
        yield frame.iloc[start:start + BATCH_ROWS].to_numpy(np.float32)


def _tfrecord(path: str, feature: str | None, preprocess: str) -> Iterator[np.ndarray]:
    """``tf.train.Example`` records: the feature's floats or integers (one sample each), or encoded images."""
    if not feature:
        raise WhyzeroError(f"TFRecord files need --feature, the name of the feature to summarize. Received: "
                           f"{Path(path).name}")
    from whyzero._quiet import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    from whyzero.preprocessing import parse_preprocessing

    apply = parse_preprocessing(preprocess)

    compression = "GZIP" if path.endswith(".gz") else ""
    batch: list[np.ndarray] = []
    for record in tf.data.TFRecordDataset(path, compression_type=compression).as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        if feature not in example.features.feature:
            raise WhyzeroError(f"No feature {feature!r} in the records; they hold "
                               f"{sorted(example.features.feature)[:10]}. Received: {Path(path).name}")
        value = example.features.feature[feature]
        if value.bytes_list.value:
            image = tf.io.decode_image(value.bytes_list.value[0], expand_animations=False).numpy()
            batch.append(apply(image[None].astype(np.float32))[0])
        else:
            batch.append(np.asarray(value.float_list.value or value.int64_list.value, np.float32))
        if len(batch) == IMAGE_BATCH:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def summarize(part: Part, preprocess: str = "none", feature: str | None = None) -> InputStats:
    """One part's statistics."""
    stats = InputStats()
    for batch in read(part, preprocess, feature):
        if batch.dtype.kind in "USO":
            raise WhyzeroError(f"Training statistics are for numeric inputs. Received: text in {part.paths[0]}")
        if len(batch):
            stats.update(batch)
    return stats


def in_process(sources: list[str], preprocess: str = "none", feature: str | None = None,
               progress=None) -> InputStats:
    """The dataset's statistics read here, part after part."""
    parts = parts_of(sources)
    total = InputStats()
    for i, part in enumerate(parts):
        total.merge(summarize(part, preprocess, feature))
        if progress:
            progress(i + 1, len(parts))
    return total


def on_beam(sources: list[str], out: str, runner: str, pipeline_args: list[str], preprocess: str = "none",
            feature: str | None = None) -> None:
    """The dataset's statistics computed on Apache Beam and written to ``out`` (any path the runner can write).

    Raises:
        WhyzeroError: Beam not installed, or an unknown runner.
    """
    if runner not in RUNNERS:
        raise WhyzeroError(f"Expected --runner in {', '.join(RUNNERS)}. Received: {runner}")
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions

        from whyzero.beam_stats import StatsCombineFn
    except ImportError:
        raise WhyzeroError("--runner needs Apache Beam: pip install 'whyzero[beam]' (or leave --runner out to "
                           "read the dataset in this process)") from None
    parts = parts_of(sources)
    options = PipelineOptions([f"--runner={runner}", *pipeline_args])
    with beam.Pipeline(options=options) as pipeline:
        (pipeline
         | "parts" >> beam.Create(parts)
         | "reshuffle" >> beam.Reshuffle()  # spread the parts over the workers
         | "summarize" >> beam.Map(summarize, preprocess, feature)
         | "merge" >> beam.CombineGlobally(StatsCombineFn())
         | "as json" >> beam.Map(lambda stats: json.dumps({"whyzero_stats": 1, **stats.to_dict()}))
         | "write" >> beam.io.WriteToText(out, shard_name_template="", num_shards=1))
