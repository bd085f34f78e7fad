"""A training run watched by ``whyzero.Monitor``: the file it appends to, and the timeline of causes read from it.

A run is one JSON-lines file (``timeline.jsonl`` in the run's folder): a header line, then one line per
observation (an epoch's end, or every N steps), written and flushed to disk as soon as it exists, so a
training that crashes or is killed keeps every observation written so far.  Each line holds the epoch's
``Diagnosis`` (its findings and the measurements behind every panel) beside the training's own numbers
(the loss the fit reported, the probe's loss against the prior entropy, each layer's measured update).  What
depends on the probe batch alone (``SHARED_PARTS``: its statistics, histograms and labels, two thirds of a
diagnosis) is written once, in a ``shared`` line before the first observation, and left out of the lines after.

``Timeline`` reads such a file (a torn last line, from a killed run, is left out and said), and answers
when each cause appeared, what it explained and when it went away (``spans``), and the per-layer statistics
over epochs the Timeline page draws as heatmaps (``layer_matrix``).  It imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from whyzero.errors import WhyzeroError, first_line

FORMAT = "whyzero-timeline"
FILE_NAME = "timeline.jsonl"
# The per-layer statistics over epochs: (key in an epoch's "layers", label, whether it spans decades)
LAYER_STATS = (("rms", "activation RMS", True), ("dead", "share of units never active", False),
               ("grad", "gradient norm", True), ("update", "update ‖ΔW‖/‖W‖ since the last observation", True))
# A timeline read in the app keeps at most this many observations (the newest are kept): the document stays
# bounded whatever the run's length.
MAX_EPOCHS = 200
# The parts of a diagnosis' summaries that depend on the probe batch alone (by panel): the same at every observation
# of a run, so written once (a digits MLP's line: 111 KB whole, 36 KB without them).
SHARED_PARTS = {"inputs": ("table", "hist", "thumbnails", "texts", "train_table", "train_hist"),
                "measurements": ("input_stats", "train_stats", "labels", "label_ids", "masks")}


def run_file(run: str | os.PathLike) -> Path:
    """The run's file: ``run`` itself when it names a file, else ``timeline.jsonl`` in the folder ``run``."""
    path = Path(run)
    return path if path.suffix in (".jsonl", ".json") else path / FILE_NAME


class RunWriter:
    """Appends a run's observations to its file; each line is on disk (flushed and synced) before ``append``
    returns.  Holds no observation in memory, only the parts of the first that every later one shares."""

    def __init__(self, run: str | os.PathLike, header: dict[str, Any]) -> None:
        self.path = run_file(run)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._shared: dict[str, dict[str, Any]] | None = None
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._write({"format": FORMAT, "created": created, **header}, mode="w")

    def append(self, record: dict[str, Any]) -> None:
        summaries = (record.get("diagnosis") or {}).get("summaries")
        if summaries:
            if self._shared is None:
                self._shared = _shared_parts(summaries)
                self._write({"shared": {"summaries": self._shared}}, mode="a")
            record = {**record, "diagnosis": {**record["diagnosis"], "summaries": _without(summaries, self._shared)}}
        self._write(record, mode="a")

    def _write(self, record: dict[str, Any], mode: str) -> None:
        # compact, and no walk for cycles: a line is a diagnosis, written at every observation of a training
        line = json.dumps(record, allow_nan=False, default=_plain, check_circular=False, separators=(",", ":")) + "\n"
        with open(self.path, mode, encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def _shared_parts(summaries: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``SHARED_PARTS`` of a diagnosis' summaries, by panel."""
    out = {}
    for panel, keys in SHARED_PARTS.items():
        part = summaries.get(panel)
        out[panel] = {k: part[k] for k in keys if k in part} if isinstance(part, dict) else {}
    return out


def _without(summaries: dict[str, Any], shared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The summaries less the parts equal to the shared ones (a part that differs stays in the line)."""
    out = dict(summaries)
    for panel, parts in shared.items():
        if isinstance(out.get(panel), dict):
            out[panel] = {k: v for k, v in out[panel].items() if k not in parts or parts[k] != v}
    return out


def _with(summaries: dict[str, Any], shared: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The summaries with the shared parts a line left out put back (the line's own parts win)."""
    out = dict(summaries)
    for panel, parts in shared.items():
        out[panel] = {**parts, **(out.get(panel) or {})}
    return out


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass
class Span:
    """One cause over the run: the observation it appeared at, the last it was seen at, the first it was gone at
    (None while it lasts), its worst severity, its role when it appeared and what it explained."""

    cause: str
    title: str
    appeared: int
    last_seen: int
    gone: int | None
    severity: str
    role: str
    explained: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_SEVERITY = {"critical": 0, "warning": 1, "info": 2}


@dataclass
class Timeline:
    """A run read back: its header and its observations in order (each a dict with ``epoch``, ``step``,
    ``logs``, ``loss``, ``prior_entropy``, ``layers``, ``findings`` and, unless compacted, ``diagnosis``)."""

    header: dict[str, Any]
    epochs: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)  # what every observation's diagnosis shares (its line)

    @classmethod
    def read(cls, run: str | os.PathLike) -> Timeline:
        """Reads a run's file (or the folder holding it).

        Raises:
            WhyzeroError: no such file, or one that is not a whyzero run.
        """
        path = run_file(run)
        if not path.is_file():
            raise WhyzeroError(f"No whyzero run at that path (expected {FILE_NAME} in the folder, written by "
                               f"whyzero.Monitor). Received: {Path(run).name}")
        with open(path, encoding="utf-8") as fh:
            return cls.parse(fh, path.name)

    @classmethod
    def parse(cls, lines: Iterable[str | bytes], name: str = "the run") -> Timeline:
        """A run from its lines; a last line cut short (a killed run) is left out and said in ``notes``.

        Raises:
            WhyzeroError: a first line that is not a whyzero run's header, or a torn line before the last.
        """
        # the newest MAX_EPOCHS only are held while reading: a long run's file does not fill memory
        header, epochs, notes, torn, seen, shared = None, deque(maxlen=MAX_EPOCHS), [], None, 0, {}
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if torn is not None:
                raise WhyzeroError(f"Line {torn} of {name} is not JSON, and more lines follow it: the file is "
                                   "corrupt, not a killed run's")
            try:
                record = json.loads(line)
            except ValueError:
                torn = number
                continue
            if header is None:
                if not isinstance(record, dict) or record.get("format") != FORMAT:
                    raise WhyzeroError(f"Expected a whyzero run (its first line says format '{FORMAT}'). "
                                       f"Received: {name}")
                header = record
            elif isinstance(record, dict) and "epoch" in record:
                epochs.append(record)
                seen += 1
            elif isinstance(record, dict) and isinstance(record.get("shared"), dict):
                shared = record["shared"]
        if header is None:
            raise WhyzeroError(f"Expected a whyzero run; the file is empty. Received: {name}")
        if torn is not None:
            notes.append(f"the last line (line {torn}) was cut short, as a killed run leaves it: the "
                         f"{seen} observations before it are read")
        if seen > MAX_EPOCHS:
            notes.append(f"the run has {seen} observations: the last {MAX_EPOCHS} are kept")
        return cls(header, list(epochs), notes, shared)

    # -- what the run shows ---------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Each observation's name: 'epoch 3', or 'step 400' for a run observed every N steps."""
        by_step = self.header.get("every") not in (None, "epoch")
        return [f"step {e['step']}" if by_step else f"epoch {e['epoch']}" for e in self.epochs]

    def spans(self) -> list[Span]:
        """Each cause (critical or warning) over the run, in the order they appeared."""
        spans: dict[str, Span] = {}
        for i, entry in enumerate(self.epochs):
            present = set()
            for f in entry.get("findings", []):
                if f["severity"] == "info":
                    continue
                present.add(f["cause"])
                span = spans.get(f["cause"])
                if span is None or span.gone is not None:
                    span = spans[f["cause"]] = Span(f["cause"], f["title"], i, i, None, f["severity"], f["role"])
                span.last_seen = i
                if _SEVERITY[f["severity"]] < _SEVERITY[span.severity]:
                    span.severity = f["severity"]
                for cause in f.get("explains", []):
                    if cause not in span.explained:
                        span.explained.append(cause)
            for cause, span in spans.items():
                if cause not in present and span.gone is None:
                    span.gone = i
        return sorted(spans.values(), key=lambda s: (s.appeared, _SEVERITY[s.severity]))

    def first_root(self) -> tuple[int, dict] | None:
        """The first observation whose diagnosis names a critical root cause, and that finding."""
        for i, entry in enumerate(self.epochs):
            for f in entry.get("findings", []):
                if f["role"] == "root" and f["severity"] == "critical":
                    return i, f
        return None

    def layer_matrix(self, stat: str) -> tuple[list[str], list[list[float | None]]]:
        """The layers (rows, in model order) and their ``stat`` at each observation (columns)."""
        names: list[str] = []
        for entry in self.epochs:
            for name in entry.get("layers", {}):
                if name not in names:
                    names.append(name)
        rows = [[(entry.get("layers", {}).get(name) or {}).get(stat) for entry in self.epochs] for name in names]
        return names, rows

    def diagnosis(self, index: int) -> dict[str, Any]:
        """The diagnosis document of observation ``index`` (a negative index counts from the end).

        Raises:
            WhyzeroError: an index out of range, or a run stored without its diagnoses.
        """
        if not self.epochs:
            raise WhyzeroError("The run holds no observation yet: the monitor writes one at each epoch's end")
        if not -len(self.epochs) <= index < len(self.epochs):
            raise WhyzeroError(f"Expected an observation between 0 and {len(self.epochs) - 1}. Received: {index}")
        data = self.epochs[index].get("diagnosis")
        if data is None:
            raise WhyzeroError(f"Observation {index} was stored without its diagnosis")
        shared = self.shared.get("summaries")
        if not shared or not isinstance(data.get("summaries"), dict):
            return data
        return {**data, "summaries": _with(data["summaries"], shared)}

    def to_dict(self, diagnoses: bool = True) -> dict[str, Any]:
        epochs = self.epochs if diagnoses else [{k: v for k, v in e.items() if k != "diagnosis"}
                                                 for e in self.epochs]
        return {"header": self.header, "epochs": epochs, "notes": self.notes,
                "shared": self.shared if diagnoses else {}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        try:
            return cls(dict(data["header"]), list(data["epochs"]), list(data.get("notes", [])),
                       dict(data.get("shared") or {}))
        except (KeyError, TypeError) as err:
            raise WhyzeroError(f"Malformed timeline ({first_line(err, 120)})") from None


def compact_findings(findings: list) -> list[dict[str, Any]]:
    """What the timeline keeps of a diagnosis' findings: cause, severity, role, title, layer, what each root
    explains (the causes of the findings it explains)."""
    out = []
    for i, f in enumerate(findings):
        explains = sorted({g.cause for g in findings if g.explained_by == i and g.cause != f.cause})
        out.append({"cause": f.cause, "severity": f.severity, "role": f.role, "title": f.title, "layer": f.layer,
                    "explains": explains})
    return out


def timeline_text(timeline: Timeline) -> str:
    """The run as the CLI prints it: what was watched, the first root cause and when, each cause's span, the loss."""
    header, labels = timeline.header, timeline.labels
    lines = [f"run of '{header.get('model', 'model')}': {len(timeline.epochs)} observation(s), every "
             f"{header.get('every', 'epoch')}, probe of {(header.get('probe') or ['?'])[0]} samples"]
    first = timeline.first_root()
    if first is not None:
        i, f = first
        lines.append(f"root cause established at {labels[i]}: {f['cause']}: {f['title']}")
    elif timeline.epochs:
        lines.append("no root cause established at any observation")
    for s in timeline.spans():
        until = f"gone at {labels[s.gone]}" if s.gone is not None else f"still at {labels[-1]}"
        lines.append(f"  {labels[s.appeared]:>10s} -> {until:22s} {s.severity.upper():8s} {s.role:11s} {s.cause}: "
                     f"{s.title}")
        if s.explained:
            lines.append(f"  {'':36s} explained: {', '.join(s.explained)}")
    lines.append("loss by observation (the fit's, the probe's, and the prior's entropy):")
    for label, entry in zip(labels, timeline.epochs):
        fit = entry.get("logs", {}).get("loss")
        parts = [f"fit {fit:.4g}" if fit is not None else "fit -",
                 f"probe {entry['loss']:.4g}" if entry.get("loss") is not None else "probe -",
                 f"prior {entry['prior_entropy']:.4g}" if entry.get("prior_entropy") is not None else "prior -"]
        stopped = "  (training stopped here)" if entry.get("stopped") else ""
        lines.append(f"  {label:>10s}: {', '.join(parts)}{stopped}")
    lines.extend(f"note: {n}" for n in timeline.notes)
    return "\n".join(lines)


def epoch_diagnosis(timeline: Timeline, index: int):
    """Observation ``index``'s ``Diagnosis``, carrying the whole timeline (``summaries["timeline"]``, with the
    index shown) so every page, a share link and a kept run show it with its place in the run.

    Raises:
        WhyzeroError: an index out of range, or a malformed diagnosis.
    """
    from whyzero.diagnosis import Diagnosis

    data = timeline.diagnosis(index)
    try:
        d = Diagnosis.from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise WhyzeroError(f"Observation {index}'s diagnosis is malformed ({first_line(err, 120)})") from None
    d.summaries["timeline"] = {**timeline.to_dict(), "current": index % len(timeline.epochs)}
    return d


def timeline_of(d) -> tuple[Timeline, int] | None:
    """The timeline a diagnosis belongs to and its index there, or None for a diagnosis of a finished model."""
    data = d.summaries.get("timeline")
    if not data:
        return None
    return Timeline.from_dict(data), int(data.get("current", len(data["epochs"]) - 1))
