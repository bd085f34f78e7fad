"""The CLI as a user runs it: a subprocess, exit codes, JSON, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

import whyzero
from whyzero import gallery


def run(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "whyzero.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_gallery_list_names_every_case():
    result = run("gallery", "list")
    assert result.returncode == 0
    for name in gallery.names():
        assert name in result.stdout
    assert "input.range_mismatch" in result.stdout


@pytest.mark.slow
def test_exported_case_diagnoses_the_same_through_cli_and_api(tmp_path):
    name = "photos_wrong_normalization"
    export = run("gallery", "export", name, str(tmp_path / "case"))
    assert export.returncode == 0, export.stderr
    assert "diagnose it with: whyzero diagnose" in export.stdout
    result = run("diagnose", str(tmp_path / "case" / "model.keras"), "--inputs", str(tmp_path / "case" / "inputs.npy"),
                 "--labels", str(tmp_path / "case" / "labels.npy"), "--json", str(tmp_path / "out.json"),
                 "--html", str(tmp_path / "out.html"))
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "out.json").read_text())
    cli_causes = {f["cause"] for f in data["findings"] if f["severity"] != "info"}
    assert "input.range_mismatch" in cli_causes
    assert "CRITICAL input.range_mismatch" in result.stdout
    assert "probing layers" in result.stderr  # progress on stderr
    report = (tmp_path / "out.html").read_text()
    assert "input.range_mismatch" in report and data["model"]["hash"] in report
    built = gallery.build(name)
    api = whyzero.diagnose(built.model, built.inputs, labels=built.labels)
    assert cli_causes == api.causes("warning")


def test_bad_model_file_gives_one_line_and_nonzero_exit(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"nonsense")
    (tmp_path / "x.npy").write_bytes(b"nonsense")
    result = run("diagnose", str(tmp_path / "m.keras"), "--inputs", str(tmp_path / "x.npy"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("whyzero: ") and "m.keras" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_inputs_file(tmp_path):
    result = run("diagnose", "nowhere.keras", "--inputs", "x.npy")
    assert result.returncode == 2
    assert result.stderr.strip() == "whyzero: No model file at that path. Received: nowhere.keras"


def test_stats_then_diagnose_with_stats(tmp_path):
    import numpy as np

    np.save(tmp_path / "train.npy", np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32))
    result = run("stats", str(tmp_path / "train.npy"), "--out", str(tmp_path / "stats.json"))
    assert result.returncode == 0 and "50 samples, 4 channels" in result.stdout
    stats = whyzero.InputStats.load(tmp_path / "stats.json")
    assert stats.samples == 50
