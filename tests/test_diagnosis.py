"""The Diagnosis document: validation, ranking, exact JSON round trip."""

import json
from pathlib import Path

import numpy as np
import pytest

from whyzero.catalog import CAUSES, covered_causes
from whyzero.diagnosis import Diagnosis, Finding


def test_unknown_cause_is_refused():
    with pytest.raises(KeyError, match="Received: 'output.zero'"):
        Finding("output.zero", "critical", "x")


def test_roots_first_then_the_symptom_then_consequences():
    d = Diagnosis(model={}, inputs={}, findings=[
        Finding("output.saturated", "warning", "s", role="consequence", explained_by=2),
        Finding("labels.imbalance", "warning", "b"),
        Finding("input.range_mismatch", "critical", "a"),
        Finding("output.constant", "critical", "c", role="symptom")])
    assert [f.cause for f in d.findings] == ["input.range_mismatch", "labels.imbalance", "output.constant",
                                              "output.saturated"]
    assert d.findings[3].explained_by == 0
    assert d.causes() == {"output.constant", "input.range_mismatch", "labels.imbalance", "output.saturated"}


def test_a_document_of_another_schema_is_refused_in_one_line():
    from whyzero.errors import WhyzeroError

    with pytest.raises(WhyzeroError, match="Received: schema 99"):
        Diagnosis.from_dict({"model": {}, "inputs": {}, "findings": [], "schema": 99})
    with pytest.raises(WhyzeroError, match="Expected a whyzero diagnosis"):
        Diagnosis.from_json("[1, 2]")


def test_a_schema_1_document_reads_with_every_finding_a_root():
    d = Diagnosis.from_dict({"model": {}, "inputs": {}, "schema": 1, "findings": [
        {"cause": "input.range_mismatch", "severity": "critical", "title": "a", "evidence": {}, "fix": "",
         "layer": None, "panel": "inputs"}]})
    assert d.findings[0].role == "root" and d.findings[0].proof is None


def test_numpy_and_non_finite_values_are_cleaned():
    f = Finding("output.constant", "critical", "t", {"a": np.float32(1.5), "b": np.array([1, 2]), "c": float("nan")})
    assert f.evidence == {"a": 1.5, "b": [1, 2], "c": None}


def test_every_cause_has_a_check():
    assert covered_causes() == set(CAUSES)


def test_round_trip_of_a_real_diagnosis_is_exact(diagnosed):
    d = diagnosed("photos_wrong_normalization")
    text = d.to_json()
    again = Diagnosis.from_json(text)
    assert again == d
    assert again.to_json() == text
    data = json.loads(text)
    finding = data["findings"][0]
    assert {"cause", "severity", "panel", "title", "evidence", "fix", "layer"} <= set(finding)


def test_taxonomy_matches_causes_md():
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "shared" / "CAUSES.md"
    ids = re.findall(r"^\| `([a-z_.]+)` \|", doc.read_text(), re.M) if doc.exists() else sorted(CAUSES)
    assert set(ids) == set(CAUSES)


def test_a_crashing_check_is_recorded_and_the_rest_still_run(diagnosed, built_cases, monkeypatch):
    import whyzero
    from whyzero import checks

    def broken(measured):
        raise RuntimeError("boom")

    monkeypatch.setattr(checks, "REGISTRY", checks.REGISTRY + [checks.Registered("broken", ("output.constant",),
                                                                                broken, ())])
    b = built_cases("binary_dead_relu")
    d = whyzero.diagnose(b.model, b.inputs, labels=b.labels)
    assert [(e.check, e.message) for e in d.errors] == [("broken", "RuntimeError: boom")]
    assert "activation.dead_relu" in d.causes()


def test_every_cause_panel_has_a_page_in_the_registry():
    from whyzero.panels import PAGE, PANELS

    assert {c.panel for c in CAUSES.values()} == {p.id for p in PANELS}
    for page in PAGE.values():
        assert (Path(__file__).resolve().parents[1] / page.file).exists(), page.file


def test_every_cause_declares_figures_that_exist_and_a_place_in_the_stage_order():
    from whyzero.catalog import EXPLAINS, STAGE
    from whyzero.figures import PANEL_FIGURES

    drawn = {spec.name for specs in PANEL_FIGURES.values() for spec in specs}
    for cause in CAUSES.values():
        assert cause.figures and set(cause.figures) <= drawn, cause.id
        assert cause.id in STAGE and cause.checks, cause.id
    # what a cause explains is derived from the declarations' kinds: the data explains what follows from it
    assert "activation.dead_relu" in EXPLAINS["input.range_mismatch"]
    assert "input.range_mismatch" not in EXPLAINS["activation.dead_relu"]


def test_compare_tells_a_retrained_model_from_another_model(diagnosed):
    import dataclasses

    from whyzero.compare import same_model

    d = diagnosed("photos_healthy")
    retrained = dataclasses.replace(d, model={**d.model, "hash": "0" * 64})
    assert same_model(d, d) == (True, "Same model: the same architecture and the same weights (the batch or its "
                                      "options differ).")
    same, words = same_model(d, retrained)
    assert same and words.startswith("Same architecture, other weights")
    same, words = same_model(d, diagnosed("tabular_unscaled"))
    assert not same and words.startswith("Different models")


def test_side_by_side_figures_share_their_numeric_axes():
    import plotly.graph_objects as go

    from whyzero.figures.base import share_axes

    small = go.Figure(go.Bar(x=["a", "b"], y=[0.2, 0.9]))
    large = go.Figure(go.Bar(x=["a", "b"], y=[3.0, 25.0]))
    share_axes([small, large])
    assert small.layout.yaxis.range == large.layout.yaxis.range
    low, high = small.layout.yaxis.range
    assert low <= 0 < 25 <= high  # bars from zero, the larger's top included
    assert small.layout.xaxis.range is None  # a categorical axis is left alone
    logs = [go.Figure(go.Scatter(x=[1, 2], y=[1e-6, 1e-3])), go.Figure(go.Scatter(x=[1, 2], y=[1e-2, 10]))]
    for fig in logs:
        fig.update_yaxes(type="log")
    share_axes(logs)
    assert logs[0].layout.yaxis.range[0] < -6 and logs[0].layout.yaxis.range[1] > 1  # in decades


@pytest.mark.slow
def test_a_large_batch_proves_its_fix_on_its_first_samples(built_cases):
    """A re-run under a batch fix probes the first PROOF_SAMPLES samples, not the whole batch: the proof still holds
    and says on how many samples it was measured."""
    import numpy as np

    import whyzero
    from whyzero.proofs import PROOF_SAMPLES

    b = built_cases("photos_wrong_normalization")
    batch, labels = np.concatenate([b.inputs, b.inputs[::-1]]), np.concatenate([b.labels, b.labels[::-1]])
    assert len(batch) > PROOF_SAMPLES
    d = whyzero.diagnose(b.model, batch, labels=labels)
    [root] = [f for f in d.findings if f.role == "root"]
    assert root.cause == "input.range_mismatch" and root.proof.fixed
    assert f"on the first {PROOF_SAMPLES} samples" in root.proof.text
    assert root.proof.after["label_accuracy"] - root.proof.before["label_accuracy"] > 0.3


def test_a_proof_on_the_first_samples_does_not_blame_the_fix_for_units_those_few_never_reached():
    """Units never active are counted over the samples seen: 8 samples leave more units unreached than the whole
    batch, so a dead-unit finding on a re-run of the first samples is not a new fault the fix brought; on a re-run
    of the whole batch it is."""
    from whyzero.causes import Fix
    from whyzero.measurements import Measurements, Task
    from whyzero.probes.inputs import InputStats
    from whyzero.proofs import _compare

    m = Measurements(Task("multiclass", 3, "softmax", True), [8, 4], "float32", False,
                     InputStats.of(np.zeros((8, 4), np.float32)), outputs=np.full((8, 3), 1 / 3, np.float32))
    dead = Finding("activation.dead_relu", "critical", "dead units", layer="dense1")
    fix = Fix("standardize", "standardize the batch")
    assert _compare(fix, m, [], m, [dead], samples=8).appeared == []
    assert _compare(fix, m, [], m, [dead]).appeared == ["activation.dead_relu"]
