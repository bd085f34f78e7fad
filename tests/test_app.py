"""The dashboard, headless: every page renders for a case of each family and shows its flags."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from whyzero import gallery
from whyzero.diagnosis import Diagnosis

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGES = ["pages/overview.py", "pages/inputs.py", "pages/model.py", "pages/activations.py", "pages/gradients.py",
         "pages/outputs.py", "pages/masks.py", "pages/diagnose.py"]
PANEL_PAGES = {"inputs": "pages/inputs.py", "model": "pages/model.py", "activations": "pages/activations.py",
               "gradients": "pages/gradients.py", "outputs": "pages/outputs.py", "labels": "pages/masks.py"}
# one broken case per family, plus a healthy twin
CASES = ["photos_wrong_normalization", "binary_unstable_lambda", "segmentation_masks_0_255", "tabular_unscaled",
         "mobilenet_raw_pixels", "binary_healthy"]


def page_text(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.error] + [e.value for e in at.warning]
    parts += [e.value for e in at.info] + [e.value for e in at.success] + [e.value for e in at.caption]
    return "\n".join(str(p) for p in parts)


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
def test_overview_ranks_the_symptom_first(diagnosed):
    d = diagnosed("binary_dead_relu")
    at = app_with(d).run()
    at.switch_page("pages/overview.py").run()
    cards = [m.value for m in at.markdown if "CRITICAL" in m.value or "WARNING" in m.value]
    assert "output.constant" in cards[0]


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
