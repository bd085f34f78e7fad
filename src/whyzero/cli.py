"""The ``whyzero`` command: diagnose, recheck, compare, timeline, stats, gallery.

Imports inside functions are deliberately lazy: each command imports what it runs, so `--help` and the commands
that need no model start in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

from whyzero.errors import WhyzeroError, first_line

# the gallery's training recipes, named in --help without importing them (they need TensorFlow)
_RECIPE_NAMES = ("binary_healthy", "binary_lr_spike", "binary_lr_tiny")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="whyzero", description="Why does this model predict zero?")
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("diagnose", help="diagnose a model on the batch it fails on")
    d.add_argument("model", help=".keras, .h5/.hdf5, a SavedModel directory or its .zip")
    d.add_argument("--inputs", required=True, nargs="+", help=".npy/.npz/.csv, or images (files, a folder, a .zip); "
                   "for a model with several inputs, an .npz with one array per input name")
    d.add_argument("--preprocess", default="none",
                   help="for images: none (0..255), unit, symmetric, caffe, torch, or mean-std:M1,M2,M3:S1,S2,S3")
    d.add_argument("--labels", help=".npy ids or one-hot, a CSV of filename,label, or a folder per class; "
                   "for a model with several outputs, an .npz with one array per output name")
    d.add_argument("--masks", help=".npy (N, H, W), or a folder / .zip of PNG masks in the images' order")
    ref = d.add_mutually_exclusive_group()
    ref.add_argument("--train-inputs", help="a sample of training inputs, as fed in training")
    ref.add_argument("--train-stats", help="a statistics file written by `whyzero stats`")
    d.add_argument("--trust-model", action="store_true", help="allow code inside the model file (Lambda layers)")
    d.add_argument("--custom-objects", metavar="FILE.py",
                   help="the model's custom layers, losses and metrics (runs the file: needs --trust-model)")
    d.add_argument("--output", help="for a model with several outputs, the head to diagnose (default: the first)")
    d.add_argument("--json", help="write the Diagnosis as JSON here")
    d.add_argument("--html", help="write the HTML report here")
    d.add_argument("--markdown", help="write a Markdown summary (to paste into a pull request or an issue) here")
    d.add_argument("--quiet", action="store_true", help="no progress on stderr")

    r = sub.add_parser("recheck", help="run the checks again on a stored diagnosis, without the model")
    r.add_argument("diagnosis", help="a diagnosis JSON (whyzero diagnose --json)")
    r.add_argument("--json", help="write the rechecked diagnosis here")

    c = sub.add_parser("compare", help="which findings appeared or disappeared between two diagnoses")
    c.add_argument("before", help="a diagnosis JSON (whyzero diagnose --json)")
    c.add_argument("after", help="another diagnosis JSON")

    t = sub.add_parser("timeline", help="when each cause appeared during a training watched by whyzero.Monitor")
    t.add_argument("run", help="the run's folder (or its timeline.jsonl)")
    t.add_argument("--json", help="write the timeline (causes over the run, and each epoch's numbers) here")
    t.add_argument("--epoch", type=int, help="an observation's index (-1: the last) whose diagnosis to write")
    t.add_argument("--diagnosis", help="with --epoch: write that observation's diagnosis JSON here")

    _add_stats(sub)
    _add_gallery(sub)
    return parser


def _add_stats(sub) -> None:
    s = sub.add_parser("stats", help="write training statistics to compare batches with",
                       epilog="With --runner, any other --option goes to the Beam pipeline "
                              "(e.g. --direct_num_workers=2 --direct_running_mode=multi_processing).")
    s.add_argument("inputs", nargs="+", help="training inputs: .npy shards, .csv, .parquet, TFRecord files of "
                   "tf.train.Example, images; files, globs or folders (.npz and .zip are read whole)")
    s.add_argument("--preprocess", default="none", help="for images, as with diagnose")
    s.add_argument("--feature", help="for TFRecord files: the feature to summarize (numbers, or encoded images)")
    s.add_argument("--runner", help="compute on Apache Beam (pip install 'whyzero[beam]'): DirectRunner, "
                   "FlinkRunner, SparkRunner or DataflowRunner; without it, in this process")
    s.add_argument("--out", required=True, help="the statistics JSON file to write (--train-stats reads it)")



def _add_gallery(sub) -> None:
    g = sub.add_parser("gallery", help="built-in broken models and their healthy twins")
    gsub = g.add_subparsers(dest="gallery_command", required=True)
    gsub.add_parser("list", help="name, causes, one line")
    sc = gsub.add_parser("score", help="recall, root cause first and false alarms over the gallery (a benchmark)")
    sc.add_argument("names", nargs="*", help="cases to score (all by default)")
    sc.add_argument("--json", help="write the scores as JSON here")
    tr = gsub.add_parser("train", help="train a recipe under whyzero.Monitor and print its timeline")
    tr.add_argument("name", help="a recipe: " + ", ".join(_RECIPE_NAMES))
    tr.add_argument("run", help="the run's folder to write")
    tr.add_argument("--epochs", type=int, help="epochs to train (default: the recipe's)")
    e = gsub.add_parser("export", help="write a case's model, batch, labels/masks and training sample")
    e.add_argument("name")
    e.add_argument("dir")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not (args.command == "stats" and args.runner):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pipeline_args = extra
    try:
        return {"diagnose": _diagnose, "stats": _stats, "gallery": _gallery, "compare": _compare,
                "recheck": _recheck, "timeline": _timeline}[args.command](args)
    except WhyzeroError as err:
        print(f"whyzero: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - never a traceback: one line, the details in a file
        print(f"whyzero: {internal_error(err)}", file=sys.stderr)
        return 3


def internal_error(err: BaseException) -> str:
    """One line for an unexpected error; the traceback goes to a file the line names."""
    with tempfile.NamedTemporaryFile("w", prefix="whyzero-error-", suffix=".txt", delete=False) as handle:
        traceback.print_exception(err, file=handle)
    first = first_line(err, 300)
    return f"internal error: {type(err).__name__}: {first} (details in {handle.name})"


def _progress(quiet: bool):
    start = time.monotonic()
    last = {"stage": None}

    def report(stage: str, fraction: float) -> None:
        if quiet:
            return
        starting = stage != last["stage"] and stage != "loading"  # a failed load prints only its reason
        if starting or fraction >= 1.0:
            print(f"[{time.monotonic() - start:6.1f}s] {stage} {fraction:4.0%}", file=sys.stderr)
            last["stage"] = stage

    return report


def _single(paths: list[str]):
    return paths[0] if len(paths) == 1 else paths


def _diagnose(args) -> int:
    from whyzero.engine import diagnose

    diagnosis = diagnose(args.model, _single(args.inputs), labels=args.labels, masks=args.masks,
                         train_inputs=args.train_inputs, train_stats=args.train_stats,
                         trust_model=args.trust_model, preprocess=args.preprocess,
                         progress=_progress(args.quiet), custom_objects=args.custom_objects, output=args.output)
    if args.json:
        Path(args.json).write_text(diagnosis.to_json(indent=2))
    if args.html:
        from whyzero.report import write_html

        write_html(diagnosis, args.html)
    if args.markdown:
        from whyzero.report import render_markdown

        Path(args.markdown).write_text(render_markdown(diagnosis), encoding="utf-8")
    print(findings_text(diagnosis))
    return 0


def findings_text(diagnosis) -> str:
    """A readable summary: the model, then each root cause and the symptom with its consequences under it."""
    # the commands that need no model (--help, gallery list) start without numpy: this one reads a diagnosis
    from whyzero.presenter import headline
    model = diagnosis.model
    lines = [f"whyzero {diagnosis.version}: {model['name']} ({model['task']}, output {model['output_shape']}, "
             f"{diagnosis.inputs['samples']} samples)"]
    if not diagnosis.findings:
        lines.append("No findings: nothing here explains constant predictions.")
    elif not any(f.role == "root" and f.severity != "info" for f in diagnosis.findings) and \
            any(f.role == "candidate" for f in diagnosis.findings):
        lines.append(headline(diagnosis).text)
    for _, f, consequences in diagnosis.grouped():
        lines.extend(_finding_lines(f, ""))
        for c in consequences:
            lines.extend(_finding_lines(c, "    "))
    for note in diagnosis.notes:
        lines.append(f"note: {note}")
    for error in diagnosis.errors:
        lines.append(f"check failed: {error.check}: {error.message}")
    return "\n".join(lines)


def _finding_lines(f, indent: str) -> list[str]:
    from whyzero.presenter import present  # lazily, as in findings_text
    p = present(f)
    where = f" [{p.layer}]" if p.layer else ""
    label = p.label.upper() if f.role != "consequence" else p.label  # a consequence reads under its root
    lines = [f"{indent}{label:11s} {p.severity.upper() if p.severity == 'critical' else p.severity:8s} "
             f"{p.cause}{where}: {p.title}"]
    pad = indent + " " * 12
    if p.evidence and not indent:
        lines.append(f"{pad}evidence: {p.evidence}")
    if p.fix and not indent:
        lines.append(f"{pad}fix: {p.fix}")
    if p.proof:
        lines.append(f"{pad}proof: {p.proof}")
    return lines


def _recheck(args) -> int:
    from whyzero.compare import read
    from whyzero.recheck import recheck

    diagnosis = recheck(read(args.diagnosis))
    if args.json:
        Path(args.json).write_text(diagnosis.to_json(indent=2))
    print(findings_text(diagnosis))
    return 0


def _compare(args) -> int:
    from whyzero.compare import compare_text, read

    print(compare_text(read(args.before), read(args.after)))
    return 0


def _timeline(args) -> int:
    from whyzero.timeline import Timeline, timeline_text

    timeline = Timeline.read(args.run)
    if args.json:
        data = timeline.to_dict(diagnoses=False)
        data["spans"] = [s.to_dict() for s in timeline.spans()]
        Path(args.json).write_text(json.dumps(data, indent=2))
    if args.diagnosis or args.epoch is not None:
        if not (args.diagnosis and args.epoch is not None):
            raise WhyzeroError("--epoch and --diagnosis go together: which observation, and where to write it")
        Path(args.diagnosis).write_text(json.dumps(timeline.diagnosis(args.epoch), indent=2))
    print(timeline_text(timeline))
    return 0


def _stats(args) -> int:
    # each command imports what it runs: --help and the commands that need no model start in a few milliseconds
    from whyzero import dataset_stats
    from whyzero.probes.inputs import InputStats

    if args.runner:
        dataset_stats.on_beam(args.inputs, args.out, args.runner, args.pipeline_args, args.preprocess, args.feature)
        stats = InputStats.load(args.out)
    else:
        def progress(done: int, total: int) -> None:
            if total > 1 and (done == total or done % max(1, total // 20) == 0):
                print(f"read {done} of {total} parts", file=sys.stderr)

        stats = dataset_stats.in_process(args.inputs, args.preprocess, args.feature, progress)
        if stats.count is None:
            raise WhyzeroError(f"The inputs hold no samples. Received: {' '.join(args.inputs)[:200]}")
        stats.save(args.out)
    print(f"wrote statistics of {stats.samples} samples, {stats.channels} channels to {args.out}")
    return 0


def _gallery(args) -> int:
    from whyzero import gallery

    if args.gallery_command == "list":
        for case in gallery.CASES.values():
            causes = ", ".join(case.causes) or "healthy"
            seed = f" (seed article {case.seed_ref})" if case.seed_ref else ""
            print(f"{case.name:34s} {causes}\n{'':34s} {case.summary}{seed}")
        return 0
    if args.gallery_command == "score":
        return _gallery_score(args)
    if args.gallery_command == "train":
        from whyzero.gallery.recipes import train
        from whyzero.timeline import Timeline, timeline_text

        monitor = train(args.name, args.run, args.epochs)
        print(timeline_text(Timeline.read(monitor.path)))
        print(f"the run is in {monitor.path}: open it on the app's Timeline page, or `whyzero timeline {args.run}`")
        return 0
    written = gallery.export(args.name, args.dir)
    for role, path in written.items():
        print(f"{role}: {path}")
    trust = " --trust-model" if gallery.get(args.name).trust else ""
    cmd = f"whyzero diagnose {written['model']} --inputs {written['inputs']}"
    for role, flag in (("labels", "--labels"), ("masks", "--masks"), ("train_inputs", "--train-inputs")):
        if role in written:
            cmd += f" {flag} {written[role]}"
    print(f"diagnose it with: {cmd}{trust}")
    return 0


def _gallery_score(args) -> int:
    from whyzero.gallery.score import row_text, score

    for name in args.names:
        gallery_case(name)
    result = score(args.names or None, progress=lambda row: print(row_text(row), flush=True))
    pct = lambda v: "n/a" if v is None else f"{v:.0%}"  # noqa: E731
    print(f"\n{result['cases']} cases: recall {pct(result['recall'])} of declared causes found, "
          f"root cause first in {pct(result['top1'])} of {result['broken']} broken cases, "
          f"{result['false_alarms']} false alarm(s) on {result['healthy']} healthy twins")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def gallery_case(name: str):
    from whyzero import gallery

    return gallery.get(name)


if __name__ == "__main__":
    sys.exit(main())
