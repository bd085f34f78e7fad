"""One registry of what the user navigates: pages, their panels and the figures each draws (and when).

It drives the app's ``st.navigation``, the Overview's links, the HTML report's sections, share links
and the tests.  No Streamlit here: the app reads it, the report and the tests too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from whyzero.diagnosis import Diagnosis


@dataclass(frozen=True)
class FigureSpec:
    """A figure of a panel: its file-name stem, the ``whyzero.figures`` function that builds it (by name, so
    the app's navigation draws before Plotly and TensorFlow load), when it applies and a one-line caption."""

    name: str
    builder: str
    applies: Callable[[Diagnosis], bool] = lambda d: True
    wide: bool = False
    caption: str = ""

    def build(self, d: Diagnosis):
        from whyzero import figures

        return getattr(figures, self.builder)(d)


@dataclass(frozen=True)
class Page:
    """A page of the app: its id (a cause panel's id for panel pages), title, icon and file."""

    id: str
    title: str
    icon: str
    file: str
    figures: tuple[FigureSpec, ...] = field(default=())
    empty: str = ""
    applies: Callable[[Diagnosis], bool] = lambda d: True

    @property
    def url(self) -> str:
        return self.file.rsplit("/", 1)[-1].removesuffix(".py")

    def figures_for(self, d: Diagnosis) -> list[tuple[FigureSpec, object]]:
        """The figures that apply to ``d``, built."""
        out = []
        for spec in self.figures:
            if not spec.applies(d):
                continue
            fig = spec.build(d)
            if fig is not None:
                out.append((spec, fig))
        return out


def _figures():
    def has(*path):
        def check(d: Diagnosis) -> bool:
            value = d.summaries
            for key in path:
                value = (value or {}).get(key) if isinstance(value, dict) else None
            return bool(value)
        return check

    def update_ratio(d: Diagnosis) -> bool:
        return any(r.get("update_ratio") is not None for r in d.summaries["gradients"]["rows"])

    return {
        "inputs": (
            FigureSpec("input_histograms", "input_histograms", wide=True,
                       caption="Healthy: the batch's histogram lies on the training one (or the model's memory)."),
            FigureSpec("batchnorm_memory", "batchnorm_memory", has("inputs", "batchnorm"),
                       caption="Healthy: every bar below 1 (the batch matches what BatchNorm saw in training)."),
            FigureSpec("preprocessing_whatif", "preprocessing_whatif", has("inputs", "whatif"),
                       caption="Healthy: 'as given' is the closest (lowest) bar."),
        ),
        "model": (
            FigureSpec("weight_scale", "weight_scale", has("model", "weights"), wide=True,
                       caption="Healthy: every kernel's std inside the green Glorot..He band."),
        ),
        "activations": (
            FigureSpec("activation_heatmap", "activation_heatmap", has("activations"), wide=True,
                       caption="Healthy: each layer's values spread over several bins; a single column is a dead "
                               "or saturated layer."),
            FigureSpec("dead_saturated_shares", "activation_shares", has("activations"),
                       caption="Healthy: bars well under the dotted line."),
            FigureSpec("spread_across_samples", "activation_spread", has("activations"),
                       caption="Healthy: the line stays above the dotted collapse threshold."),
        ),
        "gradients": (
            FigureSpec("gradient_norms", "gradient_norms", has("gradients", "rows"),
                       caption="Healthy: norms of one order of magnitude across layers, none zero or NaN."),
            FigureSpec("update_ratios", "update_ratios", update_ratio,
                       caption="Healthy: every layer inside the green band of update sizes."),
        ),
        "outputs": (
            FigureSpec("output_distribution", "output_distribution",
                       caption="Healthy: outputs spread over the range, not one bar."),
            FigureSpec("class_shares", "class_shares", has("outputs", "predicted_shares"),
                       caption="Healthy: predicted shares close to the labels' shares."),
            FigureSpec("threshold_sweep", "threshold_sweep",
                       caption="Healthy: the best threshold is near 0.5."),
            FigureSpec("loss_vs_prior", "loss_vs_prior",
                       caption="Healthy: the loss well below the entropy of the label prior."),
        ),
        "labels": (
            FigureSpec("label_shares", "label_shares", has("labels"),
                       caption="Healthy: no class far below the others (or weights that balance them)."),
            FigureSpec("foreground_per_image", "foreground_per_image", has("labels"),
                       caption="Healthy: predicted foreground follows the masks' foreground."),
        ),
    }


def _pages() -> tuple[Page, ...]:
    figs = _figures()
    return (
        Page("diagnose", "Diagnose", ":material/science:", "app_pages/diagnose.py"),
        Page("overview", "Overview", ":material/checklist:", "app_pages/overview.py"),
        Page("inputs", "Inputs", ":material/image:", "app_pages/inputs.py", figs["inputs"]),
        Page("model", "Model", ":material/account_tree:", "app_pages/model.py", figs["model"]),
        Page("activations", "Activations", ":material/bolt:", "app_pages/activations.py", figs["activations"],
             empty="No layer activations: the model has no probe-able layers."),
        Page("gradients", "Gradients", ":material/trending_down:", "app_pages/gradients.py", figs["gradients"],
             empty="No gradients: the model has no trainable kernels, or the loss could not be computed."),
        Page("outputs", "Outputs", ":material/target:", "app_pages/outputs.py", figs["outputs"]),
        Page("samples", "Samples", ":material/photo_library:", "app_pages/samples.py"),
        Page("labels", "Labels & masks", ":material/label:", "app_pages/masks.py", figs["labels"],
             empty="No labels or masks were given: give them to check balance and encoding."),
        Page("compare", "Compare", ":material/compare_arrows:", "app_pages/compare.py"),
        Page("causes", "Causes", ":material/menu_book:", "app_pages/causes.py"),
    )


PAGES: tuple[Page, ...] = _pages()
PAGE = {page.id: page for page in PAGES}
# The cause panels (CAUSES.md's "panel" column), in the order a user reads them.
NOT_PANELS = ("diagnose", "overview", "samples", "compare", "causes")
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
