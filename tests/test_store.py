"""Saved sessions: exact round trips on SQLite and PostgreSQL, tokens, expiry, concurrency; the HTML report."""

import datetime as dt
import os
import threading

import pytest

from whyzero.report import render_html, write_html
from whyzero.store import Store, valid_token

POSTGRES = os.environ.get("WHYZERO_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return Store(f"sqlite:///{tmp_path / 'sessions.db'}")
    assert POSTGRES, "set WHYZERO_TEST_POSTGRES_URL to a PostgreSQL database (scripts/test.sh starts one)"
    return Store(POSTGRES)


def test_save_then_load_gives_the_same_diagnosis(store, diagnosed):
    d = diagnosed("photos_wrong_normalization")
    token, secret = store.save(d, title="review of cnn_bn", days=7)
    assert len(token) >= 43 and valid_token(token) and token != secret  # 256 bits, url-safe
    saved = store.load(token)
    assert saved.diagnosis == d
    assert saved.title == "review of cnn_bn"
    assert (saved.expires - saved.created).days == 7


def test_notes_and_delete(store, diagnosed):
    token, secret = store.save(diagnosed("binary_healthy"))
    assert store.add_note(token, 0, "checked: preprocessing is right", author="Ada")
    [note] = store.load(token).notes["0"]
    assert (note.text, note.author) == ("checked: preprocessing is right", "Ada") and note.created.tzinfo
    assert not store.delete(token, "wrong secret")
    assert store.delete(token, secret)
    assert store.load(token) is None


@pytest.mark.parametrize("token", ["", "../../etc/passwd", "x" * 10, "a b", "🙂" * 40, None])
def test_malformed_tokens_are_refused(store, token):
    assert store.load(token) is None
    assert not store.set_note(token, 0, "x")


def test_unknown_and_expired_tokens(store, diagnosed):
    assert store.load("A" * 43) is None
    token, _ = store.save(diagnosed("binary_healthy"), days=1)
    from sqlalchemy import update

    from whyzero.store import _Row

    with store.engine.begin() as conn:
        conn.execute(update(_Row).where(_Row.token == token)
                     .values(expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)))
    assert store.load(token) is None
    assert store.attachments(token) is None
    assert not store.add_note(token, 0, "too late")
    assert store.purge_expired() >= 1


def test_twenty_concurrent_saves_all_come_back(store, diagnosed):
    d = diagnosed("binary_healthy")
    tokens, errors = [], []

    def save(i):
        try:
            tokens.append((i, store.save(d, title=f"t{i}")[0]))
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(tokens) == 20
    for i, token in tokens:
        saved = store.load(token)
        assert saved.title == f"t{i}" and saved.diagnosis == d


def test_attachments_are_kept_only_when_given(store, diagnosed):
    d = diagnosed("binary_healthy")
    plain, _ = store.save(d)
    assert store.attachments(plain) is None and not store.load(plain).has_attachments
    with_files, _ = store.save(d, attachments=b"PK zip bytes")
    assert store.attachments(with_files) == b"PK zip bytes"


def test_html_report_holds_every_finding(diagnosed, tmp_path):
    d = diagnosed("binary_dead_relu")
    path = write_html(d, tmp_path / "r.html")
    text = path.read_text()
    assert d.model["hash"] in text and d.version in text
    for f in d.findings:
        assert f.cause in text
    assert text.count("Plotly.newPlot") >= 5
    assert "<script src=" not in text and "<link" not in text  # self-contained: nothing to fetch
    assert render_html(d).startswith("<!doctype html>")


def test_twenty_notes_at_the_same_moment_are_all_kept(store, diagnosed):
    token, _ = store.save(diagnosed("binary_healthy"))
    barrier = threading.Barrier(20)

    def write(i):
        barrier.wait()
        assert store.add_note(token, i % 3, f"note {i}", author=f"r{i}")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    notes = store.load(token).notes
    assert sorted(n.text for ns in notes.values() for n in ns) == sorted(f"note {i}" for i in range(20))


NOTE_WRITER = """
import sys
from whyzero.store import Store
store = Store(sys.argv[1])
for i in range(10):
    assert store.add_note(sys.argv[2], i, f"{sys.argv[3]}-{i}")
"""


def test_two_replicas_writing_notes_lose_none(store, diagnosed, tmp_path):
    import subprocess
    import sys

    token, _ = store.save(diagnosed("binary_healthy"))
    script = tmp_path / "writer.py"
    script.write_text(NOTE_WRITER)
    replicas = [subprocess.Popen([sys.executable, str(script), store.url, token, name]) for name in ("a", "b")]
    assert all(p.wait(timeout=120) == 0 for p in replicas)
    texts = {n.text for ns in store.load(token).notes.values() for n in ns}
    assert texts == {f"{r}-{i}" for r in "ab" for i in range(10)}


def test_deleting_a_session_deletes_its_notes(store, diagnosed):
    from sqlalchemy import func, select

    from whyzero.store import _NoteRow

    token, secret = store.save(diagnosed("binary_healthy"))
    store.add_note(token, 0, "x")
    assert store.delete(token, secret)
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(_NoteRow).where(_NoteRow.token == token)).scalar() == 0


def test_runs_are_listed_per_workspace_newest_first_renamed_and_deleted(store, diagnosed):
    d, clean = diagnosed("binary_dead_relu"), diagnosed("binary_healthy")
    first, workspace = store.save_run(d, "before the fix", source={"kind": "demo", "name": "binary_dead_relu"})
    second, same = store.save_run(clean, "after the fix", workspace=workspace)
    other, elsewhere = store.save_run(d)  # another browser: another workspace
    assert same == workspace and elsewhere != workspace and valid_token(first) and valid_token(workspace)
    listed = store.runs(workspace)
    assert [r.title for r in listed] == ["after the fix", "before the fix"]
    assert listed[1].headline.startswith("Fix: ") and "Root cause" in listed[1].headline
    assert listed[0].headline.startswith("No critical or warning finding")
    saved = store.load_run(first)
    assert saved.diagnosis == d and saved.source == {"kind": "demo", "name": "binary_dead_relu"}
    assert store.rename_run(first, "dead layer, seed 3") and store.load_run(first).title == "dead layer, seed 3"
    assert [r.id for r in store.runs(elsewhere)] == [other]
    assert store.delete_run(first) and store.load_run(first) is None and not store.delete_run(first)
    assert [r.id for r in store.runs(workspace)] == [second]
    assert store.runs("../etc") == [] and store.load_run("x") is None and not store.rename_run("A" * 43, "t")


def test_owner_and_reviewers_write_to_one_thread_of_notes(store, diagnosed):
    from whyzero.report import RUN_NOTE

    run_id, _ = store.save_run(diagnosed("binary_healthy"), "clean run", attachments=b"PK files")
    token, _ = store.save(store.load_run(run_id).diagnosis, run_id=run_id)
    assert store.add_note(token, 0, "reviewer: agreed", author="Rev")
    assert store.add_note(run_id, RUN_NOTE, "owner: clean after the fix", author="Own")
    for notes in (store.load(token).notes, store.load_run(run_id).notes, store.notes_of(token),
                  store.notes_of(run_id)):
        assert [n.text for n in notes["0"]] == ["reviewer: agreed"]
        assert [(n.author, n.text) for n in notes[str(RUN_NOTE)]] == [("Own", "owner: clean after the fix")]
    assert store.run_attachments(run_id) == b"PK files"
    assert store.runs(store.load_run(run_id).workspace)[0].has_attachments
    assert store.delete_run(run_id)
    assert store.load(token) is None  # its share links go with it
    assert not store.add_note(run_id, RUN_NOTE, "too late")


def test_a_store_made_before_runs_gains_the_run_column(tmp_path, diagnosed):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE whyzero_sessions (token VARCHAR(64) PRIMARY KEY, delete_hash VARCHAR(64), "
                   "title VARCHAR(300), created DATETIME, expires DATETIME, diagnosis TEXT, notes TEXT, "
                   "has_attachments BOOLEAN, attachments BLOB)")
    store = Store(f"sqlite:///{path}")
    token, _ = store.save(diagnosed("binary_healthy"))
    assert store.load(token).run_id is None and store.add_note(token, 0, "still works")
    assert Store(f"sqlite:///{path}").load(token).notes["0"][0].text == "still works"  # a second opening


def test_exports_carry_the_review_notes(store, diagnosed):
    import json

    from whyzero.report import RUN_NOTE, notes_json, render_markdown

    d = diagnosed("binary_dead_relu")
    run_id, _ = store.save_run(d)
    store.add_note(run_id, RUN_NOTE, "seen in review <b>42</b>", author="Ada")
    store.add_note(run_id, 1, "the symptom, as expected", author="Bo")
    notes = store.notes_of(run_id)
    html, markdown = render_html(d, notes), render_markdown(d, notes=notes)
    assert "Ada · " in html and "seen in review &lt;b&gt;42&lt;/b&gt;" in html and "the symptom, as expected" in html
    assert "Review notes on the run" in markdown and "Bo · " in markdown and "note: Bo" in markdown
    exported = json.loads(json.dumps({**d.to_dict(), "review_notes": notes_json(notes)}))
    assert [(n["finding"], n["author"]) for n in exported["review_notes"]] == [(RUN_NOTE, "Ada"), (1, "Bo")]
