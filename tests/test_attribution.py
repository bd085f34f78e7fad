"""Root cause first, on literal findings: roles, explained_by, severity caps, proofs, idempotent ranking."""

from whyzero.attribution import attribute
from whyzero.diagnosis import Diagnosis, Finding, rank


def diagnose_literal(findings, depth=None):
    findings, notes = attribute(findings, depth or {})
    return Diagnosis(model={"name": "m", "task": "binary", "output_shape": [1], "hash": "0" * 64},
                     inputs={"samples": 8}, findings=rank(findings), notes=notes)


def test_raw_pixels_range_mismatch_is_the_root_and_the_rest_sit_under_it():
    d = diagnose_literal([
        Finding("gradient.exploding", "critical", "grads", layer="conv1"),
        Finding("output.saturated", "critical", "pinned"),
        Finding("output.constant", "critical", "constant"),
        Finding("input.range_mismatch", "critical", "range"),
    ], {"conv1": 0})
    assert [f.cause for f in d.findings][:2] == ["input.range_mismatch", "output.constant"]
    assert d.findings[0].role == "root" and d.findings[1].role == "symptom"
    for f in d.findings[2:]:
        assert f.role == "consequence" and f.explained_by == 0 and f.severity == "warning"
    assert sum(f.severity == "critical" for f in d.findings) == 2


def test_the_earliest_dead_layer_explains_later_ones_and_the_zero_gradient():
    d = diagnose_literal([
        Finding("activation.dead_relu", "critical", "dead 3", layer="dense3"),
        Finding("activation.collapse", "critical", "collapse", layer="dense3"),
        Finding("gradient.zero", "critical", "zero", layer="dense1"),
        Finding("activation.dead_relu", "critical", "dead 2", layer="dense2"),
    ], {"dense1": 0, "dense2": 1, "dense3": 2})
    assert d.findings[0].title == "dead 2" and d.findings[0].role == "root"
    assert all(f.role == "consequence" and f.explained_by == 0 for f in d.findings[1:])


def test_zero_gradients_never_read_as_a_low_learning_rate_root():
    d = diagnose_literal([
        Finding("training.learning_rate_low", "critical", "lr"),
        Finding("gradient.zero", "critical", "zero", layer="dense1"),
        Finding("activation.dead_relu", "critical", "dead", layer="dense1"),
    ], {"dense1": 0})
    assert d.findings[0].cause == "activation.dead_relu"
    assert d.find("training.learning_rate_low")[0].role == "consequence"


def test_huge_weights_do_not_explain_dead_units_but_tiny_ones_explain_a_collapse():
    d = diagnose_literal([
        Finding("model.weight_init", "warning", "huge", {"ratio": 13.0, "std": 2.3}, layer="dense1"),
        Finding("activation.dead_relu", "critical", "dead", layer="dense1"),
    ], {"dense1": 0})
    assert d.findings[0].cause == "activation.dead_relu"
    d = diagnose_literal([
        Finding("model.weight_init", "warning", "tiny", {"ratio": 0.01, "std": 0.003}, layer="dense1"),
        Finding("activation.collapse", "critical", "collapse", layer="dense2"),
    ], {"dense1": 0, "dense2": 1})
    assert d.findings[0].cause == "model.weight_init" and d.findings[0].severity == "critical"
    assert d.findings[1].role == "consequence" and d.findings[1].severity == "warning"


def test_what_disappears_under_a_proven_fix_becomes_its_consequence():
    proof = {"fixed": True, "disappeared": [["labels.imbalance", None]], "text": "with the fix"}
    d = diagnose_literal([
        Finding("labels.imbalance", "warning", "imbalance"),
        Finding("labels.encoding", "critical", "0/255", proof=proof),
    ])
    assert d.findings[0].cause == "labels.encoding"
    assert d.findings[1].explained_by == 0


def test_two_equally_certain_roots_are_both_shown_with_a_note():
    d = diagnose_literal([Finding("output.shape_mismatch", "critical", "a"),
                          Finding("model.loss_mismatch", "critical", "b")])
    assert [f.role for f in d.findings] == ["root", "root"]
    assert any("two root causes" in n for n in d.notes)


def test_ranking_again_and_a_json_round_trip_keep_the_order_and_links():
    d = diagnose_literal([
        Finding("output.majority_class", "critical", "one class"),
        Finding("output.threshold", "critical", "threshold"),
    ])
    again = Diagnosis.from_json(d.to_json())
    assert again == d
    assert [f.cause for f in again.findings] == ["output.threshold", "output.majority_class"]
    assert again.findings[1].explained_by == 0 and again.consequences_of(0) == [again.findings[1]]


def test_a_lone_output_finding_is_a_symptom_not_a_root():
    d = diagnose_literal([Finding("output.majority_class", "critical", "one class")])
    assert d.findings[0].role == "symptom"


def test_markdown_summary_and_compare_say_what_a_reviewer_needs(tmp_path, capsys):
    from whyzero import cli
    from whyzero.report import render_markdown

    proof = {"fixed": True, "disappeared": [["output.constant", None]], "fix": "preprocess as 'unit'",
             "text": "with the fix (preprocess as 'unit'): output spread 1e-07 → 0.31"}
    before = diagnose_literal([Finding("input.range_mismatch", "critical", "range", proof=proof),
                               Finding("output.constant", "critical", "constant"),
                               Finding("gradient.exploding", "critical", "grads", layer="conv1")])
    text = render_markdown(before, link="http://host/?session=abc")
    assert "**root cause, critical** `input.range_mismatch`" in text
    assert "Proof: with the fix (preprocess as 'unit')" in text
    assert "  - **consequence, warning** `gradient.exploding` (layer `conv1`)" in text
    after = diagnose_literal([Finding("labels.imbalance", "warning", "imbalance")])
    (tmp_path / "a.json").write_text(before.to_json())
    (tmp_path / "b.json").write_text(after.to_json())
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "disappeared (3):" in out and "appeared (1):" in out and "labels.imbalance" in out


def test_nan_weights_explain_what_they_compute_and_a_wrong_output_explains_them():
    nan = {"nonfinite_weights": 330, "layers": ["dense1", "dense2"]}
    d = diagnose_literal([
        Finding("activation.collapse", "critical", "collapse", layer="dense1"),
        Finding("output.constant", "critical", "constant"),
        Finding("gradient.zero", "critical", "zero", layer="dense1"),
        Finding("gradient.exploding", "critical", "weights NaN", nan, layer="dense1"),
        Finding("model.weight_init", "critical", "kernel all zero", layer="dense1"),
    ], {"dense1": 0, "dense2": 1})
    assert [f.title for f in d.findings][:2] == ["weights NaN", "constant"]
    assert all(f.role == "consequence" and f.explained_by == 0 for f in d.findings[2:])
    d = diagnose_literal([
        Finding("gradient.exploding", "critical", "weights NaN", nan, layer="dense1"),
        Finding("output.constant", "critical", "constant"),
        Finding("model.output_activation", "critical", "relu under categorical cross-entropy", layer="dense2"),
    ], {"dense1": 0, "dense2": 1})
    assert d.findings[0].cause == "model.output_activation" and d.findings[0].role == "root"
    assert d.findings[2].title == "weights NaN" and d.findings[2].role == "consequence"


def test_a_deep_stack_of_sigmoids_is_named_by_its_vanishing_gradient_not_its_collapse():
    """Twelve sigmoid layers contract the samples' differences forward as they shrink the gradients backward:
    the vanishing gradient (fix: ReLU-family activations) is the root and the collapse sits under it.  With no
    sigmoid stack, a collapse still explains the small gradients after it."""
    depth = {"dense": 0, "dense_4": 4}

    def found(squashing):
        return diagnose_literal([
            Finding("activation.collapse", "critical", "collapse", layer="dense_4"),
            Finding("gradient.vanishing", "critical", "vanishing", {"ratio": 3.7e-7, "squashing_layers": squashing},
                    layer="dense"),
            Finding("output.constant", "critical", "constant"),
        ], depth).findings

    stack = found(12)
    assert [(f.cause, f.role) for f in stack[:2]] == [("gradient.vanishing", "root"), ("output.constant", "symptom")]
    collapse = next(f for f in stack if f.cause == "activation.collapse")
    assert collapse.role == "consequence" and collapse.severity == "warning"
    relu = found(0)
    assert relu[0].cause == "activation.collapse" and relu[0].role == "root"
    assert next(f for f in relu if f.cause == "gradient.vanishing").role == "consequence"


def test_inputs_trained_on_unscaled_explain_the_kernels_they_blew_up_but_not_tiny_ones():
    """A flat MLP trained with SGD on raw 0..255 pixels: the first kernel grew to 1000x the Glorot scale.  The
    inputs the model was trained on unscaled explain it; they cannot explain kernels 100x too small."""
    def found(ratio):
        return diagnose_literal([
            Finding("model.weight_init", "critical", "kernel", {"ratio": ratio, "std": 180.0 * ratio / 1e3},
                    layer="dense"),
            Finding("input.unnormalized", "critical", "raw pixels"),
            Finding("output.constant", "critical", "constant"),
        ], {"dense": 0}).findings

    grown = found(1e3)
    assert [(f.cause, f.role) for f in grown[:2]] == [("input.unnormalized", "root"), ("output.constant", "symptom")]
    kernel = next(f for f in grown if f.cause == "model.weight_init")
    assert kernel.role == "consequence" and kernel.severity == "warning"
    tiny = next(f for f in found(1e-2) if f.cause == "model.weight_init")
    assert tiny.role == "root" and tiny.severity == "critical"
