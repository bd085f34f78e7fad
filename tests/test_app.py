"""The dashboard, headless: every page renders for a case of each family and shows its flags."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from whyzero import panels as registry
from whyzero.diagnosis import Diagnosis

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = [page.file for page in registry.PAGES]
PANEL_PAGES = {page.id: page.file for page in registry.PANELS}
# one broken case per family, plus a healthy twin
CASES = ["photos_wrong_normalization", "binary_unstable_lambda", "segmentation_masks_0_255", "tabular_unscaled",
         "mobilenet_raw_pixels", "binary_healthy"]


def page_text(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.error] + [e.value for e in at.warning]
    parts += [e.value for e in at.info] + [e.value for e in at.success] + [e.value for e in at.caption]
    return "\n".join(str(p) for p in parts).replace("\\", "")  # Markdown escapes of text from the model


def app_with(diagnosis: Diagnosis) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["diagnosis"] = diagnosis
    at.session_state["label"] = "test"
    return at


@pytest.mark.slow
@pytest.mark.parametrize("name", CASES)
def test_every_page_renders_with_its_flags(name, diagnosed):
    d = diagnosed(name)
    at = app_with(d).run()
    assert not at.exception
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        text = page_text(at)
        if page in (registry.PAGE["causes"].file, registry.PAGE["compare"].file, registry.PAGE["runs"].file,
                    registry.PAGE["timeline"].file):
            continue  # the reference, the comparison, the runs and the timeline are tested on their own
        assert d.model["name"] in text
        panel = next((p for p, path in PANEL_PAGES.items() if path == page), None)
        if panel is None:
            continue
        found = d.for_panel(panel)
        for finding in found:
            assert finding.title in text, (page, finding.title)
        critical = [e for e in at.error if "critical" in e.value]
        assert len(critical) == sum(f.severity == "critical" for f in found), page
        if not found:
            assert any("Nothing found here" in s.value for s in at.success), page


@pytest.mark.slow
def test_overview_shows_the_root_cause_first(diagnosed):
    d = diagnosed("binary_dead_relu")
    at = app_with(d).run()
    at.switch_page("app_pages/overview.py").run()
    cards = [m.value for m in at.markdown if ("CRITICAL" in m.value or "WARNING" in m.value)
             and "CONSEQUENCE" not in m.value]
    assert "ROOT CAUSE" in cards[0] and "activation.dead_relu" in cards[0]
    assert "SYMPTOM" in cards[1] and "output.constant" in cards[1]
    assert any("Root cause: " in e.value for e in at.error)
    consequences = [e for e in at.expander if "consequence" in e.label]
    assert consequences, "the consequences sit under their root"


@pytest.mark.slow
def test_app_opens_on_the_demo_already_diagnosed():
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert not at.exception
    d = at.session_state["diagnosis"]
    assert "input.range_mismatch" in d.causes()
    assert any("input.range_mismatch" in e.value or "Input range" in e.value for e in at.error)


@pytest.mark.slow
def test_demo_picker_diagnoses_another_case():
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.selectbox[0].set_value("binary_shifted_threshold").run()
    at.button[0].click().run()
    assert not at.exception
    assert "output.threshold" in at.session_state["diagnosis"].causes()


@pytest.mark.slow
def test_review_mode_hides_the_upload_controls(diagnosed):
    at = app_with(diagnosed("binary_healthy"))
    at.session_state["review_mode"] = True
    at.run()
    assert not at.exception
    assert len(at.tabs) == 0 and len(at.button) == 0


@pytest.fixture()
def session_store(tmp_path, monkeypatch):
    monkeypatch.setenv("WHYZERO_STORE_URL", f"sqlite:///{tmp_path / 'sessions.db'}")
    from whyzero.store import default_store

    return default_store()


@pytest.mark.slow
def test_shared_session_renders_every_page_read_only(diagnosed, session_store):
    d = diagnosed("binary_dead_relu")
    token, _ = session_store.save(d, title="review of the dead layer")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["session"] = token
    at.run()
    assert not at.exception
    assert at.session_state["diagnosis"] == d
    captions = []
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert len(at.get("file_uploader")) == 0 and len(at.toggle) == 0, page
        captions += [c.value for c in at.caption]
        panel = next((p for p, path in PANEL_PAGES.items() if path == page), None)
        if panel:
            text = page_text(at)
            assert all(f.title in text for f in d.for_panel(panel)), page
    assert any("review of the dead layer" in c for c in captions)


@pytest.mark.slow
def test_reviewer_note_is_saved(diagnosed, session_store):
    d = diagnosed("binary_dead_relu")
    token, _ = session_store.save(d)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["session"] = token
    at.run()
    at.switch_page("app_pages/overview.py").run()
    at.text_input(key="reviewer_name").input("Ada").run()
    at.text_area(key="note_0").input("the dead layer explains it").run()
    at.button(key="save_note_0").click().run()
    assert not at.exception
    [note] = session_store.load(token).notes["0"]
    assert (note.text, note.author) == ("the dead layer explains it", "Ada")
    assert any("Ada" in i.value and "the dead layer explains it" in i.value for i in at.info)


@pytest.mark.parametrize("token", ["nope", "A" * 43, "../../etc/passwd"])
def test_bad_token_shows_no_such_session(token, session_store):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["session"] = token
    at.run()
    assert not at.exception
    assert at.title[0].value == "No such session"


@pytest.mark.slow
def test_share_button_creates_a_working_link(diagnosed, session_store):
    at = app_with(diagnosed("binary_healthy")).run()
    at.switch_page("app_pages/overview.py").run()
    create = next(b for b in at.button if b.label == "Create link")
    create.click().run()
    assert not at.exception
    link = next(c.value for c in at.code if "?session=" in c.value)
    token = link.split("?session=")[1]
    assert session_store.load(token).diagnosis == at.session_state["diagnosis"]


@pytest.mark.slow
def test_creator_deletes_a_session_with_the_secret(diagnosed, session_store):
    token, secret = session_store.save(diagnosed("binary_healthy"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["session"] = token
    at.run()
    at.text_input(key="delete_secret").input("wrong").run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert session_store.load(token) is not None
    assert any("does not delete" in e.value for e in at.error)
    at.text_input(key="delete_secret").input(secret).run()
    next(b for b in at.button if b.label == "Delete").click().run()
    assert not at.exception
    assert session_store.load(token) is None
    assert at.title[0].value == "Session deleted"


@pytest.mark.slow
def test_shared_session_with_files_offers_them(diagnosed, session_store):
    token, _ = session_store.save(diagnosed("binary_healthy"), attachments=b"PK-zip")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["session"] = token
    at.run()
    assert not at.exception
    assert any(b.label == "Download the attached model and batch" for b in at.get("download_button"))


def test_every_cause_has_a_reference_page():
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["diagnosis"] = None
    at.query_params["cause"] = "activation.dead_relu"
    at.switch_page(registry.PAGE["causes"].file).run()
    assert not at.exception
    text = page_text(at)
    assert at.header[0].value == "Dead ReLU units" and "never fire" in text
    assert "DEAD_WARNING" in str([df.value for df in at.dataframe])
    assert "binary_dead_relu" in str([link.label for link in at.get("page_link")])
    from whyzero.catalog import CAUSES
    from whyzero.reference import references

    refs = references()
    for cause in CAUSES:
        assert refs[cause].meaning and refs[cause].check and refs[cause].cases, cause


def test_compare_shows_what_a_fix_made_disappear(diagnosed):
    at = app_with(diagnosed("photos_wrong_normalization"))
    at.session_state["previous_diagnosis"] = diagnosed("photos_wrong_normalization")
    at.session_state["diagnosis"] = diagnosed("photos_healthy")
    at.switch_page(registry.PAGE["compare"].file).run()
    assert not at.exception
    assert any("Disappeared" in s.value and "input.range_mismatch" in s.value for s in at.success)
    assert any(m.label == "disappeared" and m.value == str(len(diagnosed("photos_wrong_normalization").causes()))
               for m in at.metric)


@pytest.mark.slow
def test_rediagnose_under_the_proven_fix_then_compare():
    at = AppTest.from_file(APP, default_timeout=300).run()
    at.switch_page(registry.PAGE["overview"].file).run()
    fix = next(b for b in at.button if b.label.startswith("Re-diagnose with this fix"))
    fix.click().run()
    assert not at.exception
    assert "input.range_mismatch" not in at.session_state["diagnosis"].causes()
    assert "input.range_mismatch" in at.session_state["previous_diagnosis"].causes()
    assert any("Disappeared" in s.value and "input.range_mismatch" in s.value for s in at.success)


@pytest.mark.slow
def test_a_clicked_sample_opens_with_its_prediction_and_saliency(diagnosed):
    d = diagnosed("photos_wrong_normalization")
    at = app_with(d).run()
    at.switch_page(registry.PAGE["samples"].file).run()
    assert not at.exception
    assert "Sample 0" in [s.value for s in at.subheader]
    at.button(key="open_sample_2").click().run()
    assert "Sample 2" in [s.value for s in at.subheader] and at.query_params["sample"] in ("2", ["2"])
    row = d.summaries["samples"]["rows"][2]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["predicted"] == str(row["predicted"]) and metrics["label"] == str(row["label"])
    verdict = "Right" if row["predicted"] == row["label"] else "Wrong"
    assert any(e.value.startswith(verdict) for e in list(at.success) + list(at.error))
    # Grad-CAM where the predicted class's score still has a gradient; its softmax pinned at exactly 1 leaves
    # none on some images of this faulty model, which then get gradient x input
    assert "Grad-CAM" in d.summaries["samples"]["saliency_method"] or \
        d.summaries["samples"]["saliency_method"] == "gradient x input"
    assert len(d.summaries["samples"]["saliency"]) > 2
    assert not any("Saliency maps are kept" in i.value for i in at.info)  # sample 2's map is drawn


@pytest.mark.slow
def test_every_page_renders_for_a_sequence_tagger():
    """A class per token (N, T, K) with labels per token: checked per position, with no images to draw."""
    import keras
    import numpy as np

    import whyzero

    tokens = np.random.default_rng(0).integers(1, 30, size=(64, 10)).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,), dtype="int32"), keras.layers.Embedding(30, 8),
                              keras.layers.GRU(8, return_sequences=True),
                              keras.layers.TimeDistributed(keras.layers.Dense(3, activation="softmax"))])
    model.compile("adam", "sparse_categorical_crossentropy")
    d = whyzero.diagnose(model, tokens, labels=tokens % 3)
    at = app_with(d).run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
    at.switch_page(registry.PAGE["labels"].file).run()
    assert "per-position labels of shape [64, 10]" in page_text(at) and len(at.get("plotly_chart")) == 2
    assert "tagging (a class per position)" in page_text(at)


def test_overview_says_when_the_root_cause_is_not_established(diagnosed):
    """A diagnosis whose only possible root is a candidate: the first line says the cause is not established, names
    the candidates and what would separate them; the card is a CANDIDATE CAUSE, a warning, never critical."""
    from whyzero.attribution import attribute
    from whyzero.diagnosis import Finding

    base = diagnosed("binary_healthy")
    candidate = Finding("training.learning_rate_high", "critical", "3 kernels sit at one size after 900 steps",
                        {"candidates": ["training.learning_rate_high", "the training data"],
                         "separated_by": "a run at a 10x lower learning rate"})
    symptom = Finding("output.constant", "critical", "All 64 predictions are the same")
    findings, notes = attribute([candidate, symptom])
    d = Diagnosis(model=base.model, inputs=base.inputs, findings=findings, summaries=base.summaries, notes=notes)
    assert d.findings[0].role == "candidate" and d.findings[0].severity == "warning"
    at = app_with(d).run()
    at.switch_page("app_pages/overview.py").run()
    assert not at.exception
    headline = [w.value for w in at.warning if "not established" in w.value]
    assert headline and "the training data" in headline[0] and "10x lower learning rate" in headline[0]
    assert any("CANDIDATE CAUSE · WARNING" in m.value for m in at.markdown)
    assert not any("Root cause: " in e.value for e in at.error)


@pytest.mark.slow
def test_every_diagnosis_is_a_run_at_its_own_address_through_every_page(session_store):
    at = AppTest.from_file(APP, default_timeout=300).run()
    assert "run" not in at.query_params  # the demo shown to a newcomer is not a run
    at.selectbox[0].set_value("binary_dead_relu").run()
    at.button[0].click().run()
    assert not at.exception
    run_id = at.session_state["run_id"]
    assert at.query_params["run"] in (run_id, [run_id])
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.query_params["run"] in (run_id, [run_id]), page  # a page switch keeps the address
    saved = session_store.load_run(run_id)
    assert saved.title == "demo: binary_dead_relu" and "activation.dead_relu" in saved.diagnosis.causes()

    reloaded = AppTest.from_file(APP, default_timeout=120)
    reloaded.query_params["run"] = run_id
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.session_state["diagnosis"] == saved.diagnosis  # a reload shows the same run, not the demo
    reloaded.switch_page(registry.PAGE["runs"].file).run()
    assert reloaded.dataframe[0].value["title"].tolist() == ["demo: binary_dead_relu"]

    unknown = AppTest.from_file(APP, default_timeout=120)
    unknown.query_params["run"] = "A" * 43
    unknown.run()
    assert [t.value for t in unknown.title] == ["No such run"]


def test_runs_page_renames_deletes_and_compares_in_time_order(diagnosed, session_store):
    import time

    before, after = diagnosed("photos_wrong_normalization"), diagnosed("photos_healthy")
    first, workspace = session_store.save_run(before, "raw pixels")
    time.sleep(0.01)
    second, _ = session_store.save_run(after, "divided by 255", workspace=workspace)
    at = app_with(after)
    at.session_state["workspace"] = workspace
    at.switch_page(registry.PAGE["runs"].file).run()
    assert not at.exception
    assert at.dataframe[0].value["title"].tolist() == ["divided by 255", "raw pixels"]  # newest first
    at.session_state["compare_runs"] = [second, first]  # picked newest first: shown oldest first
    at.switch_page(registry.PAGE["compare"].file).run()
    assert not at.exception
    assert at.subheader[0].value.startswith("raw pixels (") and "→ divided by 255 (" in at.subheader[0].value
    assert any("Disappeared" in s.value and "input.range_mismatch" in s.value for s in at.success)
    assert any(i.value.startswith("Same model: the same architecture and the same weights") for i in at.info)
    assert session_store.rename_run(first, "raw 0..255 pixels") and session_store.delete_run(second)
    at.switch_page(registry.PAGE["runs"].file).run()
    assert at.dataframe[0].value["title"].tolist() == ["raw 0..255 pixels"]


def test_compare_says_when_two_models_differ(diagnosed):
    at = app_with(diagnosed("photos_healthy"))
    at.session_state["previous_diagnosis"] = diagnosed("tabular_unscaled")
    at.switch_page(registry.PAGE["compare"].file).run()
    assert not at.exception
    assert any(w.value.startswith("Different models: their architectures differ") for w in at.warning)


def test_owner_notes_a_clean_run_and_reviewers_see_it(diagnosed, session_store):
    from whyzero.report import RUN_NOTE

    d = diagnosed("binary_healthy")
    run_id, _ = session_store.save_run(d, "clean")
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page(registry.PAGE["overview"].file).run()
    at.text_input(key="reviewer_name").input("Owner").run()
    at.text_area(key=f"note_{RUN_NOTE}").input("clean after scaling by 1/255").run()
    at.button(key=f"save_note_{RUN_NOTE}").click().run()
    assert not at.exception
    assert any("clean after scaling by 1/255" in i.value and "Owner" in i.value for i in at.info)
    token, _ = session_store.save(d, run_id=run_id)
    reviewer = AppTest.from_file(APP, default_timeout=120)
    reviewer.query_params["session"] = token
    reviewer.run()
    reviewer.switch_page(registry.PAGE["overview"].file).run()
    assert any("clean after scaling by 1/255" in i.value for i in reviewer.info)
    assert reviewer.query_params["session"] in (token, [token])


def test_tabular_features_are_named_from_the_csv_header_flagged_first(built_cases, tmp_path):
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    import whyzero
    from whyzero.figures.inputs import feature_table

    b = built_cases("tabular_healthy")
    names = list(load_breast_cancer().feature_names)
    batch = np.array(b.inputs, copy=True)
    batch[:, names.index("mean area")] *= 1000.0  # one feature fed in other units
    header = tmp_path / "batch.csv"
    pd.DataFrame(batch, columns=names).to_csv(header, index=False)
    d = whyzero.diagnose(b.model, str(header), labels=b.labels, train_inputs=b.train_inputs)
    rows = feature_table(d)
    assert d.inputs["samples"] == len(batch) and sorted(r["feature"] for r in rows) == sorted(names)
    assert rows[0]["feature"] == "mean area" and rows[0]["flagged"] and rows[0]["distance"] > 3
    assert sum(r["flagged"] for r in rows) == 1  # the other 29 features match training
    at = app_with(d).run()
    at.switch_page(registry.PAGE["inputs"].file).run()
    assert not at.exception
    assert at.dataframe[0].value["feature"].tolist()[0] == "mean area"
    assert any(s.value == "Features: 30, 1 flagged" for s in at.subheader)

    headerless = tmp_path / "plain.csv"
    pd.DataFrame(batch).to_csv(headerless, index=False, header=False)
    plain = whyzero.diagnose(b.model, str(headerless), labels=b.labels, train_inputs=b.train_inputs)
    assert plain.inputs["samples"] == len(batch)  # the first row is a sample, not a header
    assert feature_table(plain)[0]["feature"] == f"#{names.index('mean area')}"


def test_samples_are_all_reachable_sorted_filtered_and_paged(diagnosed):
    from whyzero.figures.samples import SamplesView

    d = diagnosed("photos_wrong_normalization")
    rows = SamplesView.of(d).rows
    assert len(rows) == d.inputs["samples"] and len(SamplesView.of(d).grid) == len(rows)  # every sample
    wrong = [r for r in rows if not r["right"]]
    assert wrong, "the faulty model gets samples wrong"
    at = app_with(d).run()
    at.switch_page(registry.PAGE["samples"].file).run()
    at.selectbox(key="sample_show").set_value("wrong only").run()
    at.selectbox(key="sample_order").set_value("highest loss first").run()
    assert not at.exception
    listed = at.dataframe[0].value
    assert len(listed) == len(wrong) and not listed["right"].any()
    assert listed["loss"].tolist() == sorted(listed["loss"].tolist(), reverse=True)
    first = int(listed["sample"].iloc[0])
    assert f"Sample {first}" in [h.value for h in at.subheader]  # the worst opens first
    next_button = next(b for b in at.button if b.label == "Sample →")
    assert next_button.proto.shortcut.lower() == "right"  # the keyboard moves through the list
    next_button.click().run()
    assert f"Sample {int(listed['sample'].iloc[1])}" in [h.value for h in at.subheader]
    if len(wrong) > 16:  # a second page of pictures
        next(b for b in at.button if b.label == "Page →").click().run()
        assert at.button(key=f"open_sample_{int(listed['sample'].iloc[16])}")
