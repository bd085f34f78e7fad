"""One registry of what the user navigates: the pages and which of them are cause panels.

It drives the app's ``st.navigation``, the Overview's links, the HTML report's sections, share links
and the tests.  No Streamlit here: the app reads it, the report and the tests too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from whyzero.diagnosis import Diagnosis


@dataclass(frozen=True)
class Page:
    """A page of the app: its id (a cause panel's id for panel pages), title, icon and file; what a panel page says
    when none of its figures applies.  A panel's figures are declared beside the code that draws them
    (``whyzero.figures.PANEL_FIGURES``), so the navigation draws before Plotly loads."""

    id: str
    title: str
    icon: str
    file: str
    empty: str = ""
    applies: Callable[[Diagnosis], bool] = lambda d: True

    @property
    def url(self) -> str:
        return self.file.rsplit("/", 1)[-1].removesuffix(".py")


def _pages() -> tuple[Page, ...]:
    return (
        Page("diagnose", "Diagnose", ":material/science:", "app_pages/diagnose.py"),
        Page("overview", "Overview", ":material/checklist:", "app_pages/overview.py"),
        Page("inputs", "Inputs", ":material/image:", "app_pages/inputs.py"),
        Page("model", "Model", ":material/account_tree:", "app_pages/model.py"),
        Page("activations", "Activations", ":material/bolt:", "app_pages/activations.py",
             empty="No layer activations: the model has no probe-able layers."),
        Page("gradients", "Gradients", ":material/trending_down:", "app_pages/gradients.py",
             empty="No gradients: the model has no trainable kernels, or the loss could not be computed."),
        Page("outputs", "Outputs", ":material/target:", "app_pages/outputs.py"),
        Page("samples", "Samples", ":material/photo_library:", "app_pages/samples.py"),
        Page("labels", "Labels & masks", ":material/label:", "app_pages/masks.py",
             empty="No labels or masks were given: give them to check balance and encoding."),
        Page("timeline", "Timeline", ":material/timeline:", "app_pages/timeline.py"),
        Page("runs", "Runs", ":material/history:", "app_pages/runs.py"),
        Page("compare", "Compare", ":material/compare_arrows:", "app_pages/compare.py"),
        Page("causes", "Causes", ":material/menu_book:", "app_pages/causes.py"),
    )


PAGES: tuple[Page, ...] = _pages()
PAGE = {page.id: page for page in PAGES}
# The cause panels (CAUSES.md's "panel" column), in the order a user reads them.
NOT_PANELS = ("diagnose", "overview", "samples", "timeline", "runs", "compare", "causes")
PANELS: tuple[Page, ...] = tuple(p for p in PAGES if p.id not in NOT_PANELS)


def panel(panel_id: str) -> Page:
    """The page of a cause panel.

    Raises:
        KeyError: an unknown panel id.
    """
    try:
        return PAGE[panel_id]
    except KeyError:
        raise KeyError(f"Unknown panel. Received: {panel_id!r}") from None
