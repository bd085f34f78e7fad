"""`whyzero stats` over a whole dataset: parts summarized apart and merged equal the whole, in this process and on
Apache Beam's DirectRunner with two worker processes, on generated TFRecords, image folders, CSV, Parquet and
.npy shards."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from whyzero import dataset_stats
from whyzero.errors import WhyzeroError
from whyzero.probes.inputs import InputStats


def same(a: InputStats, b: InputStats) -> None:
    """Moments equal up to float rounding, extremes and every count exactly, histograms exactly."""
    assert a.samples == b.samples and a.constant_samples == b.constant_samples
    for name in ("count", "min", "max", "integer", "nan", "inf", "hist"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_allclose(a.sum, b.sum, rtol=1e-9)
    np.testing.assert_allclose(a.sumsq, b.sumsq, rtol=1e-9)


def test_two_halves_merged_equal_the_whole():
    rng = np.random.default_rng(0)
    batch = np.concatenate([rng.normal(3, 2, (300, 6)), np.full((20, 6), 7.0)]).astype(np.float32)
    batch[5, 2] = np.nan
    whole = InputStats().update(batch)
    merged = InputStats().update(batch[:170]).merge(InputStats().update(batch[170:]))
    same(merged, whole)
    assert merged.nan[2] == 1 and merged.samples == 320
    with pytest.raises(WhyzeroError, match="6 channels"):
        merged.merge(InputStats().update(np.zeros((4, 3))))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Generated shards of every kind: rows in .npy, CSV and Parquet; images as PNG files and in TFRecords."""
    import pandas as pd
    import tensorflow as tf

    root = tmp_path_factory.mktemp("dataset")
    rng = np.random.default_rng(1)
    rows = rng.lognormal(0, 2, (150_000, 4)).astype(np.float32)
    for i, part in enumerate(np.array_split(rows, 3)):
        np.save(root / f"rows-{i}.npy", part)
    pd.DataFrame(rows[:20_000], columns=list("abcd")).to_csv(root / "rows.csv", index=False)
    pd.DataFrame(rows[:30_000], columns=list("abcd")).to_parquet(root / "rows.parquet", row_group_size=7_000)
    images = (rng.random((300, 16, 16, 3)) * 255).astype(np.uint8)
    (root / "images").mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / "images" / f"{i:04d}.png")
    for shard in range(2):
        with tf.io.TFRecordWriter(str(root / f"images-{shard}.tfrecord")) as writer:
            for image in images[shard * 150:(shard + 1) * 150]:
                png = io.BytesIO()
                Image.fromarray(image).save(png, format="PNG")
                example = tf.train.Example(features=tf.train.Features(feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png.getvalue()]))}))
                writer.write(example.SerializeToString())
    with tf.io.TFRecordWriter(str(root / "rows.tfrecord")) as writer:
        for row in rows[:5_000]:
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=row.tolist()))})).SerializeToString())
    return root, rows, images


def test_in_process_statistics_of_every_kind_of_source(dataset):
    root, rows, images = dataset
    shards = dataset_stats.in_process([str(root / "rows-*.npy")])
    same(shards, InputStats().update(rows))
    assert len(dataset_stats.parts_of([str(root / "rows-*.npy")])) == 3
    csv = dataset_stats.in_process([str(root / "rows.csv")])
    np.testing.assert_allclose(csv.mean, rows[:20_000].mean(0), rtol=1e-4)
    parquet = dataset_stats.in_process([str(root / "rows.parquet")])
    assert parquet.samples == 30_000 and len(dataset_stats.parts_of([str(root / "rows.parquet")])) == 5
    np.testing.assert_allclose(parquet.max, rows[:30_000].max(0))
    folder = dataset_stats.in_process([str(root / "images")], preprocess="unit")
    np.testing.assert_allclose(folder.mean, images.reshape(-1, 3).mean(0) / 255, rtol=1e-5)
    records = dataset_stats.in_process([str(root / "images-*.tfrecord")], preprocess="unit", feature="image")
    same(records, folder)
    floats = dataset_stats.in_process([str(root / "rows.tfrecord")], feature="x")
    np.testing.assert_allclose(floats.sum, rows[:5_000].astype(np.float64).sum(0), rtol=1e-6)
    with pytest.raises(WhyzeroError, match="--feature"):
        dataset_stats.in_process([str(root / "rows.tfrecord")])
    with pytest.raises(WhyzeroError, match="No file matches"):
        dataset_stats.in_process([str(root / "nothing-*.npy")])


def run_stats(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "whyzero.cli", "stats", *args], capture_output=True, text=True,
                          env=env, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("source,options", [("images-*.tfrecord", ["--feature", "image", "--preprocess", "unit"]),
                                            ("images", ["--preprocess", "unit"]),
                                            ("rows-*.npy", [])])
def test_beam_with_two_worker_processes_equals_one_process(dataset, tmp_path, source, options):
    pytest.importorskip("apache_beam")
    root, _, _ = dataset
    one = run_stats(str(root / source), *options, "--out", str(tmp_path / "one.json"))
    assert one.returncode == 0, one.stderr
    beam = run_stats(str(root / source), *options, "--out", str(tmp_path / "beam.json"), "--runner", "DirectRunner",
                     "--direct_num_workers=2", "--direct_running_mode=multi_processing")
    assert beam.returncode == 0, beam.stderr
    single, parallel = InputStats.load(tmp_path / "one.json"), InputStats.load(tmp_path / "beam.json")
    same(parallel, single)
    assert f"wrote statistics of {single.samples} samples" in beam.stdout
    assert json.loads((tmp_path / "beam.json").read_text())["whyzero_stats"] == 1
