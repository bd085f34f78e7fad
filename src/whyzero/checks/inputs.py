"""Input checks: range, double normalization, dtype, channel order, feature scales, invalid values."""

from __future__ import annotations

import numpy as np

from whyzero.causes import CRITICAL, DATA_EFFECTS, INFO, WARNING, Cause, Fix, Kind, Stage, declare
from whyzero.checks import Skipped, check
from whyzero.checks.model import grows_weights
from whyzero.distances import stats_score
from whyzero.findings import Finding
from whyzero.measurements import Measurements, unique_counts
from whyzero.preprocessing import PREPROCESSING_WORDS, PREPROCESSINGS, recover_raw
from whyzero.text import times
from whyzero.transforms import reverse_channels, standardize, to_reference, unstandardize

# Memory/stat distance (median |z| + |log10 variance ratio|, see memory.memory_score):
# calibrated on the gallery: matching batches score < 0.5, a 0..255 vs 0..1 mix-up > 3.
RANGE_CRITICAL = 2.0
RANGE_WARNING = 1.0
# A candidate preprocessing must beat the given batch by this factor to be named as the match.
MATCH_FACTOR = 0.5
# A batch whose values are integers in this share, with max above 1.5, looks like raw pixels.
INTEGER_SHARE = 0.99
# A model "expects small floats" when its training inputs stay within this magnitude.
SMALL_FLOAT_MAX = 10.0
# Rescaling output span below this fraction of what it produces from 0..255 pixels: scaled twice.
DOUBLE_SCALE_FRACTION = 0.05
# Tabular features whose std differ by this factor (max/min) are on different scales
# (seed 001: 0..1 next to 1000..10000).
SCALE_RATIO_WARNING = 100.0
SCALE_RATIO_CRITICAL = 1e4
# Images whose every value lies within a span this narrow were squeezed, typically by a preprocessing applied twice.
SQUEEZED_SPAN = 0.05
# Share of all-constant samples (all-black images from a broken loader).
CONSTANT_SAMPLES_WARNING = 0.25


# -- the fixes a proof re-runs the model under ---------------------------------------------------------------------
def _channels_fix() -> Fix:
    return Fix("channels", "reverse the channel order (x[..., ::-1])", batch=reverse_channels)


def _preprocessing_fix(f: Finding, run) -> Fix | None:
    """The what-if's best match, else the training statistics the batch is mapped onto."""
    best = run.whatif.best if run.whatif else None
    if best == "as given, channels reversed":
        return _channels_fix()
    if best in PREPROCESSINGS:
        return Fix(f"preprocess:{best}", f"preprocess as '{best}'",
                   batch=lambda x: PREPROCESSINGS[best](recover_raw(x)[0]).astype(np.float32))
    reference = run.train_stats
    if reference is not None and (best == "training mean/std" or reference.channels == run.input_stats.channels):
        return Fix("train-stats", "map the batch to the training mean and std",
                   batch=lambda x: to_reference(x, reference))
    return None


def _dtype_fix(f: Finding, run) -> Fix | None:
    fix = _preprocessing_fix(f, run)
    if fix is None and float(run.input_stats.max.max()) > 1.5:
        return Fix("preprocess:unit", "divide by 255", batch=lambda x: np.asarray(x, np.float32) / 255.0)
    return fix


def _channel_fix(f: Finding, run) -> Fix | None:
    return _channels_fix() if run.batch.ndim >= 3 else None


def _undo_normalization(f: Finding, run) -> Fix | None:
    """Feed what the model's own Rescaling or Normalization expects."""
    if "layer_scale" in f.evidence:
        return Fix("raw", "feed raw 0..255 pixels (the model rescales them itself)",
                   batch=lambda x: recover_raw(x)[0].astype(np.float32))
    norm = run.memory.normalization
    if norm is not None:
        return Fix("raw", "feed the raw features (the model standardizes them itself)",
                   batch=unstandardize(norm.mean, norm.variance))
    return None


def _standardize_fix(f: Finding, run) -> Fix:
    return Fix("standardize", "standardize each feature with the batch's mean and std", batch=standardize)


_INPUT = frozenset({Kind.INPUT})
_TRAINED_UNSCALED = frozenset({Kind.INPUT, Kind.TRAINED_UNSCALED})
_MEMORY_PROOF = "re-run under the preprocessing that best matches the model's memory"
_STANDARDIZE_PROOF = "re-run with every feature standardized by the batch's mean and std"

INVALID_VALUES = declare(Cause(
    "input.invalid_values", "inputs", Stage.DATA, "NaN / Inf or constant inputs",
    "NaN / Inf, or a constant (zero-variance) batch such as all-black images from a broken loader",
    "counts, per-sample variance", explains=_INPUT | DATA_EFFECTS, figures=("input_histograms",)))
DOUBLE_NORMALIZATION = declare(Cause(
    "input.double_normalization", "inputs", Stage.BUILD, "The batch is normalized twice",
    "the model rescales or normalizes inside (`Rescaling`, `Normalization`) and the batch was already scaled",
    "the layer and its parameters, the batch range", precedence=0, kinds=_INPUT, explains=DATA_EFFECTS,
    fix=_undo_normalization, proof="re-run on the raw inputs the model's own Rescaling/Normalization expects",
    figures=("input_histograms",)))
CHANNEL_ORDER = declare(Cause(
    "input.channel_order", "inputs", Stage.BUILD, "Colour channels in the wrong order (RGB vs BGR)",
    "RGB fed to a BGR-trained model or the reverse", "per-channel means, batch vs training, and the permutation that "
    "matches", precedence=1, kinds=_INPUT, explains=DATA_EFFECTS, fix=_channel_fix,
    proof="re-run with the channels reversed", figures=("input_histograms", "preprocessing_whatif")))
RANGE_MISMATCH = declare(Cause(
    "input.range_mismatch", "inputs", Stage.BUILD, "Input range differs from what the model was trained on",
    "the batch's value range / mean / std differs from what the model was trained on (0-255 vs 0-1, wrong mean/std, "
    "wrong `preprocess_input` mode)",
    "batch vs training per-channel (or per-feature) min/max/mean/std; where no training data is given: the model's "
    "own memory of it (BatchNorm moving mean/variance of the first BN layers, an adapted `Normalization` layer); "
    "which standard preprocessing would match", precedence=2, kinds=_INPUT, explains=DATA_EFFECTS,
    fix=_preprocessing_fix, proof=_MEMORY_PROOF,
    figures=("input_histograms", "batchnorm_memory", "preprocessing_whatif")))
DTYPE_MISMATCH = declare(Cause(
    "input.dtype_mismatch", "inputs", Stage.BUILD, "Integer (0..255) inputs where the model expects small floats",
    "integer arrays (uint8) or integer-valued 0..255 floats where the model expects small floats",
    "dtype, share of integer values, range", precedence=3, kinds=_INPUT, explains=DATA_EFFECTS, fix=_dtype_fix,
    proof=_MEMORY_PROOF + " (or x / 255)", figures=("input_histograms", "preprocessing_whatif")))
FEATURE_SCALE_DISPARITY = declare(Cause(
    "input.feature_scale_disparity", "inputs", Stage.BUILD, "Features on very different scales",
    "tabular features whose scales differ by orders of magnitude, unnormalized", "per-feature std / range table, the "
    "ratio", precedence=4, kinds=_TRAINED_UNSCALED, explains=DATA_EFFECTS | {Kind.WEIGHTS}, refine=grows_weights,
    fix=_standardize_fix, proof=_STANDARDIZE_PROOF, figures=("input_histograms",)))
UNNORMALIZED = declare(Cause(
    "input.unnormalized", "inputs", Stage.BUILD, "Inputs never normalized: large, off-centre values",
    "inputs never normalized at all (training saw the same scale): features far from zero relative to their spread "
    '(mean ≫ std), or magnitudes ≫ 1 fed straight into saturating or ReLU units — the most common answer to "my '
    'model predicts one value"',
    "per-feature mean / std / min / max, mean-to-std ratio, the first layer's pre-activation range and share in the "
    "flat region; what standardizing would give", precedence=5, kinds=_TRAINED_UNSCALED,
    explains=DATA_EFFECTS | {Kind.WEIGHTS}, refine=grows_weights, fix=_standardize_fix, proof=_STANDARDIZE_PROOF,
    figures=("input_histograms",)))


def _memory_evidence(m: Measurements) -> dict:
    w = m.whatif
    if not w:
        return {}
    return {"memory_source": w.source, "score_as_given": w.given_score, "best_match": w.best,
            "best_score": w.best_score}


@check(RANGE_MISMATCH)
def range_mismatch(m: Measurements) -> list[Finding]:
    """The batch's per-channel mean and std against the training statistics, or against what the model remembers
    (BatchNorm moving statistics, an adapted Normalization layer): median |z| plus the variance ratio in
    decades.
    """
    stats = m.input_stats
    if m.train_stats is None and m.whatif is not None and m.whatif.by_labels:
        return _range_from_labels(m)
    if m.train_stats is not None:
        score, source = stats_score(stats, m.train_stats), "training statistics"
    elif m.whatif is not None:
        score, source = m.whatif.given_score, m.whatif.source
    else:
        score, source = m.memory.score, m.memory.source
    if score is None:
        return Skipped("no training data given, and the model holds no BatchNorm or Normalization memory "
                       "of its training inputs (give --train-inputs or --train-stats)")
    if score < RANGE_WARNING:
        return []
    evidence = {"distance": score, "compared_with": source,
                "batch_mean": stats.mean.tolist()[:16], "batch_std": stats.std.tolist()[:16],
                "batch_min": float(stats.min.min()), "batch_max": float(stats.max.max())}
    if m.train_stats is not None:
        evidence.update(train_mean=m.train_stats.mean.tolist()[:16], train_std=m.train_stats.std.tolist()[:16],
                        train_min=float(m.train_stats.min.min()), train_max=float(m.train_stats.max.max()))
    evidence.update(_memory_evidence(m))
    fix = "Feed the batch with the preprocessing used in training."
    best = evidence.get("best_match")
    if best and best != "as given":
        fix = f"Preprocess the batch as '{best}': it matches what the model remembers of its training inputs."
    low, high = float(stats.min.min()), float(stats.max.max())
    title = f"The batch is {score:.1f} units away from the {source} (0 = same distribution)"
    if m.is_image and high - low < SQUEEZED_SPAN:  # x / 255 / 255, or x / 127.5 - 1 twice
        title += f"; every value lies within [{low:.3g}, {high:.3g}]"
        fix = (f"Every pixel lies within [{low:.3g}, {high:.3g}]: the batch looks preprocessed twice. Preprocess "
               "the raw pixels once" + (f", as '{best}': that matches what the model remembers." if best and
                                        best != "as given" else ", as in training."))
    best_score = evidence.get("best_score")
    # a middling distance is critical too when the model predicts one thing and a standard preprocessing of the
    # same batch matches the model's memory (a batch preprocessed twice: its values squeezed near one point)
    explained = best is not None and best != "as given" and best_score is not None \
        and best_score < min(RANGE_WARNING, score / 2) and output_collapsed(m)
    severity = CRITICAL if score >= RANGE_CRITICAL or explained else WARNING
    return [Finding(RANGE_MISMATCH.id, severity, title, evidence, fix)]


def _range_from_labels(m: Measurements) -> list[Finding]:
    """No memory of the training inputs: the model gets the labelled samples wrong as given, and right under one
    standard preprocessing of the same pixels (``memory.preprocessing_whatif``)."""
    w, stats = m.whatif, m.input_stats
    best = w.candidate(w.best)
    if best is None or best.name.startswith("as given"):
        return []
    evidence = {"compared_with": w.source, "samples": w.samples, "accuracy_as_given": w.given_accuracy,
                "best_match": best.name, "accuracy_best": best.accuracy,
                "accuracy_per_preprocessing": {c.name: c.accuracy for c in w.candidates},
                "batch_min": float(stats.min.min()), "batch_max": float(stats.max.max()),
                "batch_mean": stats.mean.tolist()[:16], "batch_std": stats.std.tolist()[:16]}
    words = PREPROCESSING_WORDS.get(best.name, f"'{best.name}'")
    return [Finding(RANGE_MISMATCH.id, CRITICAL,
                    f"Fed as {words}, the model gets {best.accuracy:.0%} of {w.samples} labelled samples "
                    f"right, against {w.given_accuracy:.0%} as given (batch range "
                    f"[{stats.min.min():.3g}, {stats.max.max():.3g}])",
                    evidence, f"Preprocess the batch as '{best.name}' ({words}): the scale the model was "
                    "trained on.")]


@check(DOUBLE_NORMALIZATION)
def double_normalization(m: Measurements) -> list[Finding]:
    """A Rescaling layer's output span against what it makes of 0..255 pixels, or an adapted Normalization layer's
    std against the batch's.
    """
    findings = []
    stats = m.input_stats
    batch_max = float(np.max(np.abs([stats.min.min(), stats.max.max()])))
    probes = {p.name: p for p in m.layers}
    for layer in m.memory.rescaling:
        expected_span = 255.0 * abs(layer["scale"])
        probe = probes.get(layer["layer"])
        if probe is None:
            continue
        span = probe.values.max - probe.values.min
        if batch_max <= 1.5 and span < DOUBLE_SCALE_FRACTION * expected_span:
            findings.append(Finding(
                DOUBLE_NORMALIZATION.id, CRITICAL,
                f"'{layer['layer']}' rescales by {layer['scale']:.4g} inside the model, but the batch is already in "
                f"[{stats.min.min():.3g}, {stats.max.max():.3g}]",
                {"layer_scale": layer["scale"], "layer_offset": layer["offset"], "batch_max": batch_max,
                 "layer_output_span": span, "expected_span": expected_span},
                "Feed raw 0..255 pixels: the model scales them itself (or remove the Rescaling layer).",
                layer=layer["layer"]))
    norm = m.memory.normalization
    if norm is not None:
        ref_std = float(np.sqrt(np.mean(norm.variance)))
        ratio = float(np.mean(stats.std)) / max(ref_std, 1e-12)
        looks_scaled = abs(float(np.mean(stats.mean))) < 1.5 and float(np.mean(stats.std)) < 1.5
        if ref_std > 10 * 1.0 and ratio < DOUBLE_SCALE_FRACTION and looks_scaled:
            findings.append(Finding(
                DOUBLE_NORMALIZATION.id, CRITICAL,
                f"'{norm.layer}' standardizes inside the model, but the batch is already standardized",
                {"layer_mean": norm.mean[:16], "layer_std": ref_std, "batch_std": float(np.mean(stats.std)),
                 "std_ratio": ratio},
                "Feed the raw features: the Normalization layer standardizes them itself.", layer=norm.layer))
    return findings


def takes_token_ids(m: Measurements) -> bool:
    """The model reads integer token ids (an Embedding first): integers are what it expects."""
    return bool(m.memory.embedding)


@check(DTYPE_MISMATCH)
def dtype_mismatch(m: Measurements) -> list[Finding]:
    """The batch's dtype and share of integer values, against whether the model expects small floats (training
    statistics or its memory).
    """
    stats = m.input_stats
    if takes_token_ids(m):
        return []
    raw_like = (np.dtype(stats.dtype).kind in "ui" or stats.integer_share >= INTEGER_SHARE) and stats.max.max() > 1.5
    if not raw_like:
        return []
    expects_small, reason = _expects_small_floats(m)
    evidence = {"dtype": stats.dtype, "integer_share": stats.integer_share,
                "min": float(stats.min.min()), "max": float(stats.max.max()), "expected": reason}
    if expects_small:
        return [Finding(DTYPE_MISMATCH.id, CRITICAL,
                        f"The batch holds integer pixel values ({stats.dtype}, 0..{stats.max.max():.0f}) "
                        f"but {reason}", evidence,
                        "Convert to float and scale as in training (e.g. x.astype('float32') / 255).")]
    if expects_small is None and not m.memory.rescaling:
        return [Finding(DTYPE_MISMATCH.id, INFO,
                        f"The batch holds integer values ({stats.dtype}, max {stats.max.max():.0f}); "
                        "no training reference says whether the model expects that", evidence,
                        "Give --train-inputs or --train-stats to confirm the expected range.")]
    return []


def _expects_small_floats(m: Measurements) -> tuple[bool | None, str]:
    if m.train_stats is not None:
        small = float(np.max(np.abs([m.train_stats.min.min(), m.train_stats.max.max()]))) <= SMALL_FLOAT_MAX
        return small, f"training inputs lie in [{m.train_stats.min.min():.3g}, {m.train_stats.max.max():.3g}]"
    w = m.whatif
    if w and w.by_labels:
        if w.best in ("unit", "symmetric", "torch"):
            return True, f"the model gets the labels right only when the batch is preprocessed as '{w.best}'"
        return None, "unknown"
    if w and w.best in ("unit", "symmetric", "torch", "training mean/std"):
        if w.names_a_match(MATCH_FACTOR):
            return True, f"the model's memory ({w.source}) matches '{w.best}' preprocessing"
        return False, "the model's memory matches the batch as given"
    if m.memory.score is not None:
        if m.memory.score >= RANGE_CRITICAL:
            return True, f"the batch is far from the model's memory ({m.memory.source})"
        return False, "the batch matches the model's memory"
    return None, "unknown"


@check(CHANNEL_ORDER)
def channel_order(m: Measurements) -> list[Finding]:
    """The distance to the reference of the batch as given and with its channels reversed."""
    stats = m.input_stats
    if stats.channels != 3 or not m.is_image:
        return []
    if m.train_stats is not None and m.train_stats.channels == 3:
        ref_std = np.maximum(m.train_stats.std, 1e-12)
        same = float(np.linalg.norm((stats.mean - m.train_stats.mean) / ref_std))
        flipped = float(np.linalg.norm((stats.mean[::-1] - m.train_stats.mean) / ref_std))
        source = "training statistics"
    elif m.whatif is not None:
        same, flipped = m.whatif.score_of("as given"), m.whatif.score_of("as given, channels reversed")
        source = m.whatif.source
        if same is None or flipped is None:
            return []
    else:
        return []
    if same < RANGE_WARNING * 0.25 or flipped >= MATCH_FACTOR * same:
        return []
    return [Finding(CHANNEL_ORDER.id, CRITICAL if same >= RANGE_WARNING else WARNING,
                    "The colour channels are in reverse order: reversed, the batch matches the "
                    f"{source} ({flipped:.2f} vs {same:.2f})",
                    {"distance_as_given": same, "distance_reversed": flipped, "batch_channel_means":
                     stats.mean.tolist(), "compared_with": source, "permutation": [2, 1, 0]},
                    "Reverse the channel axis (x[..., ::-1]): RGB vs BGR.")]


@check(FEATURE_SCALE_DISPARITY)
def feature_scale_disparity(m: Measurements) -> list[Finding]:
    """The ratio of the largest to the smallest scale among the features of a tabular batch that vary, in std and
    in range (max - min): both must be far apart.  A sparse feature (a pixel at the edge of the digits, a rare
    flag) has a tiny std on the same 0..1 range as the rest: its std alone would call 0..1 pixels disparate."""
    stats = m.input_stats
    if len(m.batch_shape) != 2 or stats.channels < 2 or m.memory.normalization or takes_token_ids(m):
        return []
    if m.layers and m.layers[0].type in FEATURE_STANDARDIZING:
        return []  # the model standardizes each feature itself (a BatchNormalization first: its memory is judged)
    std, spans = stats.std, np.asarray(stats.max, np.float64) - np.asarray(stats.min, np.float64)
    varying = (spans > 0) & (std > 0) & np.isfinite(spans)  # exactly constant features have no scale
    if varying.sum() < 2:
        return []
    std_ratio = float(std[varying].max() / std[varying].min())
    range_ratio = float(spans[varying].max() / spans[varying].min())
    ratio = min(std_ratio, range_ratio)
    if ratio < SCALE_RATIO_WARNING:
        return []
    small, large = np.where(varying, std, np.inf), np.where(varying, std, -np.inf)
    return [Finding(FEATURE_SCALE_DISPARITY.id, CRITICAL if ratio >= SCALE_RATIO_CRITICAL else WARNING,
                    f"Feature scales differ by {times(ratio)} (std from {std[varying].min():.3g} to "
                    f"{std[varying].max():.3g}, range from {spans[varying].min():.3g} to {spans[varying].max():.3g})",
                    {"std_ratio": std_ratio, "range_ratio": range_ratio, "largest_feature": int(np.argmax(large)),
                     "smallest_feature": int(np.argmin(small)), "feature_std": std.tolist()[:64],
                     "feature_min": stats.min.tolist()[:64], "feature_max": stats.max.tolist()[:64]},
                    "Standardize each feature ((x - mean) / std from the training set) or add a Normalization layer.")]


@check(INVALID_VALUES)
def invalid_values(m: Measurements) -> list[Finding]:
    """NaN/Inf counts, constant samples, a constant batch; token ids outside an Embedding's vocabulary."""
    stats = m.input_stats
    nan, inf = int(stats.nan.sum()), int(stats.inf.sum())
    findings = []
    if nan or inf:
        findings.append(Finding(INVALID_VALUES.id, CRITICAL, f"The batch holds {nan} NaN and {inf} Inf values",
                                {"nan": nan, "inf": inf, "values": int(stats.count.sum() + nan + inf)},
                                "Find where the loader produces NaN/Inf (division by zero, bad files)."))
    embedding = m.memory.embedding
    if embedding and embedding.get("invalid_ids"):
        evidence = {"invalid_ids": embedding["invalid_ids"], "values": embedding["values"],
                    "max_id": embedding["max_id"], "vocabulary": embedding["input_dim"],
                    "fractional_ids": embedding.get("fractional_ids", 0)}
        layer = embedding["layer"]
        if 2 * evidence["fractional_ids"] >= evidence["invalid_ids"]:  # ids scaled like features
            title = (f"{evidence['fractional_ids']} of {evidence['values']} token ids are not whole numbers (from "
                     f"{embedding.get('min_id', 0.0):.3g} to {embedding['max_id']:.3g}): '{layer}' truncates each to "
                     "the whole number below it")
            fix = ("Feed the token ids as the tokenizer gives them: scaling them like features (ids / vocabulary "
                   "size) maps them all to a few ids.")
        else:
            title = f"{embedding['invalid_ids']} token ids fall outside the vocabulary of '{layer}' " \
                    f"(0..{embedding['input_dim'] - 1})"
            fix = ("Tokenize with the vocabulary the model was trained with (and its size); map unknown tokens to the "
                   "OOV id.")
        findings.append(Finding(INVALID_VALUES.id, CRITICAL, title, evidence, fix, layer=layer))
    share = stats.constant_samples / max(stats.samples, 1)
    if float(np.max(stats.std)) == 0.0:
        findings.append(Finding(INVALID_VALUES.id, CRITICAL,
                                f"The whole batch is one constant value ({stats.mean.mean():.4g})",
                                {"constant_samples": stats.constant_samples, "samples": stats.samples,
                                 "value": float(stats.mean.mean())},
                                "The loader returns blank inputs: check file paths and decoding."))
    elif share >= CONSTANT_SAMPLES_WARNING and len(m.batch_shape) > 2:
        findings.append(Finding(INVALID_VALUES.id, WARNING,
                                f"{stats.constant_samples} of {stats.samples} samples are constant (blank)",
                                {"constant_samples": stats.constant_samples, "samples": stats.samples,
                                 "share": share}, "Check the loader for blank or unreadable images."))
    return findings


# input.unnormalized: features far from zero relative to their spread (|mean| / std, median over
# features), or typically large (median per-feature RMS), fed into a model that does not normalize
# them itself.  Standardized features sit at |mean|/std ~ 0 and RMS ~ 1; the "heights around 65-70
# inches" case sits at |mean|/std ~ 20.
OFF_CENTRE_RATIO = 3.0
LARGE_MAGNITUDE = 10.0
# ... and only where it visibly hurts: the output no longer varies (relative spread, as
# output.constant's warning) or is one class (critical), or the first activated layer is almost
# entirely dead or saturated (warning).  Raw iris features (sepal length 5.8 +- 0.8) into a ReLU MLP
# leave half of 8 units silent and still classify 92%: not a finding.
FIRST_LAYER_HARM = 0.9
OUTPUT_COLLAPSED = 2e-2
NORMALIZING_LAYERS = {"BatchNormalization", "LayerNormalization", "Normalization", "Rescaling",
                      "UnitNormalization", "GroupNormalization", "Embedding", "TextVectorization"}
# ... and those of them that put every feature on its own scale (a per-sample normalization does not)
FEATURE_STANDARDIZING = {"BatchNormalization", "Normalization"}


@check(UNNORMALIZED, needs=("outputs",))
def unnormalized(m: Measurements) -> list[Finding]:
    """Median |mean|/std and median RMS of the features, where the first activated layer is almost all dead or
    saturated, or the output collapsed.
    """
    stats = m.input_stats
    if m.is_image or not m.layers or stats.samples < 2:
        return []
    if m.memory.normalization or m.memory.rescaling:
        return []
    if m.layers[0].type in NORMALIZING_LAYERS or float(np.max(stats.std)) == 0.0:
        return []
    std = np.where(stats.std > 0, stats.std, np.nan)
    off_centre = float(np.nanmedian(np.abs(stats.mean) / std))
    magnitude = float(np.median(np.sqrt(stats.sumsq / np.maximum(stats.count, 1))))
    if off_centre < OFF_CENTRE_RATIO and magnitude < LARGE_MAGNITUDE:
        return []
    first, harm, harm_what = _first_layer_harm(m)
    collapsed = output_collapsed(m)
    if harm < FIRST_LAYER_HARM and not collapsed:
        return []
    evidence = {"median_mean_to_std": off_centre, "median_feature_rms": magnitude,
                "feature_mean": stats.mean.tolist()[:32], "feature_std": stats.std.tolist()[:32],
                "feature_min": stats.min.tolist()[:32], "feature_max": stats.max.tolist()[:32],
                "first_layer": first, f"first_layer_{harm_what}_share": harm, "output_collapsed": collapsed,
                "compared_with": "training statistics" if m.train_stats is not None else "the batch itself"}
    where = f"; {harm:.0%} of '{first}' units are {harm_what}" if harm >= FIRST_LAYER_HARM else ""
    return [Finding(UNNORMALIZED.id, CRITICAL if collapsed else WARNING,
                    "The inputs were never normalized: "
                    + (f"features sit {off_centre:.0f} std from zero (typical magnitude {magnitude:.3g})"
                       if off_centre >= OFF_CENTRE_RATIO else f"features are typically {magnitude:.3g} in magnitude")
                    + where, evidence,
                    "Standardize every feature with the training set's mean and std (or put a Normalization "
                    "layer adapted on the training data first), then retrain.")]


def _first_layer_harm(m: Measurements) -> tuple[str | None, float, str]:
    """The first layer with an activation: its share of dead (ReLU) or saturated (sigmoid/tanh) units."""
    for probe in m.layers[:-1]:
        if probe.values.gate_n:
            return probe.name, probe.values.gate_saturated_share, "saturated"
        if probe.activation in ("relu", "relu6"):
            return probe.name, probe.values.never_active_share, "dead"
        if probe.activation in ("sigmoid", "tanh"):
            return probe.name, probe.values.share("flat"), "saturated"
    return None, 0.0, "dead"


def output_collapsed(m: Measurements) -> bool:
    """Predictions that barely vary across the batch, or (with labels of two classes or more) one class for 95%."""
    out = np.asarray(m.outputs, np.float64).reshape(len(m.outputs), -1)
    if len(out) < 2:
        return False
    if not np.isfinite(out).all():
        return True  # NaN / Inf predictions: nothing varies that means anything
    scale = float(np.sqrt(np.mean(out**2)))
    if scale == 0 or float(np.max(np.std(out, axis=0))) / scale < OUTPUT_COLLAPSED:
        return True
    predicted = m.predicted_classes()
    if predicted is None or m.label_ids is None or len(unique_counts(m.label_ids)[0]) < 2:
        return False
    return float(np.bincount(predicted.reshape(-1).astype(int)).max() / predicted.size) >= 0.95
