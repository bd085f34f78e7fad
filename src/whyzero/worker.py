"""Diagnoses in a separate process, so the dashboard's server never loads TensorFlow or a stranger's model.

The server stays small and quick (Streamlit clears a loaded Keras session after every page run, a full
garbage collection each time), a model that crashes or exhausts memory takes only its own process down,
and its memory is returned when the diagnosis ends.

``python -m whyzero.worker JOB RESULT`` reads a pickled job the server wrote (never a user's file), prints
``progress <fraction> <stage>`` lines while it works and writes the diagnosis' JSON, or the error, to RESULT.

Imports inside functions are deliberately lazy: the engine, the gallery and TensorFlow load in the worker process
only.
"""

from __future__ import annotations

import json
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from whyzero.errors import WhyzeroError, first_line

Progress = Callable[[str, float], None]


class WorkerError(RuntimeError):
    """An unexpected error inside the worker: ``first_line`` for the page, ``details`` (the traceback) below."""

    def __init__(self, first_line: str, details: str) -> None:
        super().__init__(first_line)
        self.details = details


def diagnose_isolated(job: dict[str, Any], progress: Progress | None = None) -> str:
    """Runs ``job`` in a fresh process and returns the diagnosis' JSON.

    ``job`` holds ``kwargs`` for ``whyzero.diagnose`` (paths, arrays, strings), optionally ``gallery`` (a case
    name whose model and data replace them) and ``fix_key`` with ``measurements`` (re-run the batch under a
    proven fix).

    Raises:
        WhyzeroError: the diagnosis refused its input (one line, as the CLI prints it).
        WorkerError: anything else, with the worker's traceback.
    """
    report = progress or (lambda stage, fraction: None)
    with tempfile.TemporaryDirectory(prefix="whyzero-job-") as folder:
        job_path, result_path = Path(folder) / "job.pkl", Path(folder) / "result.json"
        job_path.write_bytes(pickle.dumps(job))
        process = subprocess.Popen([sys.executable, "-m", "whyzero.worker", str(job_path), str(result_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        try:
            _follow(process, report)
            code = process.wait()
        finally:  # the caller stopped (a page's Cancel, a closed tab): the worker stops with it
            if process.poll() is None:
                process.kill()
                process.wait()
        if not result_path.exists():
            raise WorkerError(f"the diagnosis process ended without a result (exit code {code}: out of memory, "
                              "or killed)", "")
        result = json.loads(result_path.read_text())
    if "diagnosis" in result:
        return result["diagnosis"]
    if "error" in result:
        raise WhyzeroError(result["error"])
    raise WorkerError(result.get("internal", "unknown error"), result.get("details", ""))


# How often a waiting caller hears of the worker (its last stage again) when the worker prints nothing: a page
# shows the seconds passing and its Cancel takes effect within this time.
HEARTBEAT_S = 0.5


def _follow(process: subprocess.Popen, report: Progress) -> None:
    """Passes the worker's progress lines to ``report`` until its output ends, repeating the last stage every
    ``HEARTBEAT_S`` while it is quiet; an exception from ``report`` propagates (the caller kills the worker)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="whyzero-worker-output", daemon=True).start()
    stage, fraction = "starting a worker process (TensorFlow loads there, a few seconds)", 0.0
    while True:
        try:
            line = lines.get(timeout=HEARTBEAT_S)
        except queue.Empty:
            report(stage, fraction)
            continue
        if line is None:
            return
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) == 3 and parts[0] == "progress":
            try:
                stage, fraction = parts[2], float(parts[1])
            except ValueError:
                continue
            report(stage, fraction)


def run_job(job: dict[str, Any], progress: Progress) -> str:
    """The worker's side: builds what the job names and diagnoses it."""
    import whyzero

    kwargs = dict(job.get("kwargs", {}))
    if job.get("gallery"):
        from whyzero import gallery

        built, case = gallery.build(job["gallery"]), gallery.get(job["gallery"])
        kwargs.update(model=built.model, inputs=built.inputs, labels=built.labels, masks=built.masks,
                      train_inputs=built.train_inputs, trust_model=case.trust)
    if job.get("fix_key"):
        from whyzero.fed import image_geometry
        from whyzero.loading.data import load_inputs
        from whyzero.loading.models import LoadedModel, load_model
        from whyzero.measurements import Measurements
        from whyzero.proofs import batch_fix

        fix = batch_fix(job["fix_key"], Measurements.from_dict(job["measurements"]))
        if fix is None:
            raise WhyzeroError(f"This fix cannot be re-run. Received: {job['fix_key']}")
        model = kwargs["model"]
        if not isinstance(model, LoadedModel) and isinstance(model, (str, Path)):
            model = load_model(model, trust_model=kwargs.get("trust_model", False))
        size, channels = image_geometry(model) if isinstance(model, LoadedModel) else (None, 3)
        inputs = kwargs["inputs"]
        batch = inputs if hasattr(inputs, "shape") else load_inputs(
            inputs, preprocess=kwargs.pop("preprocess", "none"), size=size, channels=channels).array
        kwargs.update(model=model, inputs=fix(batch))
    return whyzero.diagnose(progress=progress, **kwargs).to_json()


def main(argv: list[str]) -> int:
    job_path, result_path = Path(argv[0]), Path(argv[1])

    def progress(stage: str, fraction: float) -> None:
        print(f"progress {fraction:.3f} {stage}", flush=True)

    try:
        job = pickle.loads(job_path.read_bytes())  # written by the server itself, never uploaded
        result: dict[str, str] = {"diagnosis": run_job(job, progress)}
        code = 0
    except WhyzeroError as err:
        result, code = {"error": str(err)}, 2
    except BaseException as err:  # noqa: BLE001 - reported to the page as one line, the traceback below

        first = first_line(err, 300)
        result, code = {"internal": f"{type(err).__name__}: {first}", "details": traceback.format_exc()}, 3
    result_path.write_text(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
