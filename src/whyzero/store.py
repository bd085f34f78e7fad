"""Saved runs and shared sessions: a Diagnosis (and optional attachments) behind an unguessable token.

A *run* is every diagnosis the app makes, at its own address (``?run=<id>``): the owner's, kept with its model
name, time and headline, listed with the other runs of its *workspace* (the runs made from one browser, carried
by the run addresses themselves: whoever holds a run's address sees its workspace's list).  A *shared session*
(``?session=<token>``) is a read-only copy for reviewers; when it was shared from a run, its reviewers' notes are
the run's notes, so the owner and every reviewer read the same thread.

SQLAlchemy over an embedded SQLite file by default (``WHYZERO_DATA_DIR``/sessions.db), or any
server given by ``WHYZERO_STORE_URL`` (PostgreSQL: ``postgresql+psycopg://user:pw@host/db``), so
several app replicas serve the same links.  Tokens are 256 bits from ``secrets``; they are only
ever compared in the database, never used to build a path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    delete,
    event,
    inspect,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from whyzero.config import settings
from whyzero.diagnosis import Diagnosis
from whyzero.report import RUN_NOTE  # noqa: F401 - a note on the run as a whole

TOKEN_BYTES = 32  # 256 bits
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
NOTE_CHARS = 5000
AUTHOR_CHARS = 80


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "whyzero_sessions"
    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    delete_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    diagnosis: Mapped[str] = mapped_column(Text)
    legacy_notes: Mapped[str] = mapped_column("notes", Text, default="{}")  # before notes had rows; read only
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    attachments: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)  # the run it was shared from


class _RunRow(_Base):
    """One diagnosis the app made: the owner's run, at ``?run=<id>``."""

    __tablename__ = "whyzero_runs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(300))
    model_name: Mapped[str] = mapped_column(String(300))
    headline: Mapped[str] = mapped_column(String(500))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    diagnosis: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="{}")  # how to diagnose it again (a gallery case, options)
    attachments: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class _RunNoteRow(_Base):
    """A note on a run: on one finding, or on the run as a whole (``finding`` = RUN_NOTE)."""

    __tablename__ = "whyzero_run_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("whyzero_runs.id", ondelete="CASCADE"), index=True)
    finding: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(AUTHOR_CHARS), default="")
    text: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class _NoteRow(_Base):
    """One reviewer note: a row each, so notes written at the same moment (any replica) are all kept."""

    __tablename__ = "whyzero_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token: Mapped[str] = mapped_column(String(64), ForeignKey("whyzero_sessions.token", ondelete="CASCADE"),
                                       index=True)
    finding: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(AUTHOR_CHARS), default="")
    text: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


@dataclass
class Note:
    finding: int
    text: str
    author: str
    created: dt.datetime


def notes_by_finding(rows) -> dict[str, list[Note]]:
    """Note rows (oldest first) keyed by their finding's index as a string (``"-1"``: the whole run)."""
    notes: dict[str, list[Note]] = {}
    for row in rows:
        notes.setdefault(str(row.finding), []).append(Note(row.finding, row.text, row.author, _aware(row.created)))
    return notes


@dataclass
class SavedSession:
    """A stored session.  ``notes`` maps a finding's index (as a string) to its notes, oldest first."""

    token: str
    title: str
    created: dt.datetime
    expires: dt.datetime
    diagnosis: Diagnosis
    notes: dict[str, list[Note]] = field(default_factory=dict)
    has_attachments: bool = False
    run_id: str | None = None


@dataclass
class RunSummary:
    """A run as the Runs list shows it (its diagnosis is not read)."""

    id: str
    title: str
    model_name: str
    headline: str
    created: dt.datetime
    has_attachments: bool = False


@dataclass
class SavedRun:
    """A stored run with its diagnosis and notes (oldest first, keyed as in ``SavedSession``)."""

    id: str
    workspace: str
    title: str
    created: dt.datetime
    diagnosis: Diagnosis
    source: dict = field(default_factory=dict)
    notes: dict[str, list[Note]] = field(default_factory=dict)
    has_attachments: bool = False


def store_url() -> str:
    config = settings()
    if config.store_url:
        return config.store_url
    folder = config.data_dir
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'sessions.db'}"


class Store:
    """Saves and loads sessions; the schema is created on first use."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or store_url()
        sqlite = self.url.startswith("sqlite")
        self.engine = create_engine(self.url, pool_pre_ping=True,
                                    connect_args={"timeout": 30, "check_same_thread": False} if sqlite else {})
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self.engine)
        _add_columns(self.engine)

    def save(self, diagnosis: Diagnosis, title: str = "", days: float | None = None,
             attachments: bytes | None = None, run_id: str | None = None) -> tuple[str, str]:
        """Stores a diagnosis; returns (token for the link, secret that deletes it).

        ``days`` defaults to ``WHYZERO_SESSION_DAYS``.
        """
        token = secrets.token_urlsafe(TOKEN_BYTES)
        secret = secrets.token_urlsafe(TOKEN_BYTES)
        now = dt.datetime.now(dt.timezone.utc)
        days = settings().session_days if days is None else days
        row = _Row(token=token, delete_hash=_hash(secret), title=(title or diagnosis.model.get("name", ""))[:300],
                   created=now, expires=now + dt.timedelta(days=days), diagnosis=diagnosis.to_json(),
                   has_attachments=attachments is not None, attachments=attachments,
                   run_id=run_id if valid_token(run_id) else None)
        with Session(self.engine) as session, session.begin():
            session.add(row)
        return token, secret

    def load(self, token: str) -> SavedSession | None:
        """The session behind a token; None for a malformed, unknown or expired one."""
        if not valid_token(token):
            return None
        with Session(self.engine) as session:
            row = self._live(session, token)
            if row is None:
                return None
            notes = self._session_notes(session, row)
            return SavedSession(row.token, row.title, _aware(row.created), _aware(row.expires),
                                Diagnosis.from_json(row.diagnosis), notes, row.has_attachments, row.run_id)

    @staticmethod
    def _session_notes(session: Session, row: _Row) -> dict[str, list[Note]]:
        """A shared session's notes: its run's, when it was shared from a run that is still kept; else its own."""
        if row.run_id and session.get(_RunRow, row.run_id) is not None:
            return _run_notes(session, row.run_id)
        notes: dict[str, list[Note]] = {}
        for finding, legacy in json.loads(row.legacy_notes or "{}").items():
            notes.setdefault(str(finding), []).append(Note(int(finding), legacy, "", _aware(row.created)))
        query = select(_NoteRow).where(_NoteRow.token == row.token).order_by(_NoteRow.created, _NoteRow.id)
        for finding, more in notes_by_finding(session.execute(query).scalars()).items():
            notes.setdefault(finding, []).extend(more)
        return notes

    @staticmethod
    def _live(session: Session, token: str) -> _Row | None:
        """The session's row, unless it is unknown or expired."""
        row = session.get(_Row, token)
        if row is None or _aware(row.expires) < dt.datetime.now(dt.timezone.utc):
            return None
        return row

    def attachments(self, token: str) -> bytes | None:
        """The attached files of a live session (None once it expired)."""
        if not valid_token(token):
            return None
        with Session(self.engine) as session:
            row = self._live(session, token)
            return None if row is None else row.attachments

    def add_note(self, token: str, finding: int, text: str, author: str = "") -> bool:
        """Adds a note on finding number ``finding`` (``RUN_NOTE``: the whole run), given a run's id (its owner)
        or a shared session's token (a reviewer); False for an unknown or expired one, or an empty note."""
        if not valid_token(token) or not text.strip():
            return False
        now = dt.datetime.now(dt.timezone.utc)
        fields = {"finding": int(finding), "text": text[:NOTE_CHARS], "author": author.strip()[:AUTHOR_CHARS],
                  "created": now}
        with Session(self.engine) as session, session.begin():
            run_id = token if session.get(_RunRow, token) is not None else None
            if run_id is None:
                row = self._live(session, token)
                if row is None:
                    return False
                run_id = row.run_id if row.run_id and session.get(_RunRow, row.run_id) is not None else None
            session.add(_RunNoteRow(run_id=run_id, **fields) if run_id else _NoteRow(token=token, **fields))
        return True

    set_note = add_note

    def notes_of(self, token: str) -> dict[str, list[Note]]:
        """The notes of a run (given its id) or of a shared session (given its token), without the diagnosis."""
        if not valid_token(token):
            return {}
        with Session(self.engine) as session:
            if session.get(_RunRow, token) is not None:
                return _run_notes(session, token)
            row = self._live(session, token)
            return {} if row is None else self._session_notes(session, row)

    def delete(self, token: str, secret: str) -> bool:
        """Deletes a session given the creator's secret."""
        if not valid_token(token):
            return False
        with Session(self.engine) as session, session.begin():
            row = session.get(_Row, token)
            if row is None or not hmac.compare_digest(row.delete_hash, _hash(secret)):
                return False
            session.execute(delete(_NoteRow).where(_NoteRow.token == token))
            session.delete(row)
        return True

    def purge_expired(self) -> int:
        """Deletes expired sessions, and runs older than ``WHYZERO_RUN_DAYS``, with their notes and attachments;
        returns how many."""
        now = dt.datetime.now(dt.timezone.utc)
        with Session(self.engine) as session, session.begin():
            tokens = session.execute(select(_Row.token).where(_Row.expires < now)).scalars().all()
            if tokens:
                session.execute(delete(_NoteRow).where(_NoteRow.token.in_(tokens)))
                session.execute(delete(_Row).where(_Row.token.in_(tokens)))
            old = now - dt.timedelta(days=settings().run_days)
            runs = session.execute(select(_RunRow.id).where(_RunRow.created < old)).scalars().all()
            if runs:
                self._delete_runs(session, runs)
        return len(tokens) + len(runs)

    # Runs: every diagnosis the app makes, at its own address.

    def save_run(self, diagnosis: Diagnosis, title: str = "", workspace: str | None = None,
                 source: dict | None = None, attachments: bytes | None = None) -> tuple[str, str]:
        """Keeps a diagnosis as a run; returns (its id, its workspace): a new workspace when ``workspace`` is None
        or malformed.  ``source`` says how to diagnose it again; ``attachments`` are its files, kept only when the
        user asks."""
        from whyzero.presenter import headline

        run_id = secrets.token_urlsafe(TOKEN_BYTES)
        workspace = workspace if valid_token(workspace) else secrets.token_urlsafe(TOKEN_BYTES)
        name = str(diagnosis.model.get("name", ""))
        row = _RunRow(id=run_id, workspace=workspace, title=(title or name)[:300], model_name=name[:300],
                      headline=headline(diagnosis).text[:500], created=dt.datetime.now(dt.timezone.utc),
                      diagnosis=diagnosis.to_json(), source=json.dumps(source or {}), attachments=attachments)
        with Session(self.engine) as session, session.begin():
            session.add(row)
        return run_id, workspace

    def load_run(self, run_id: str) -> SavedRun | None:
        """The run behind an id, with its notes; None for a malformed, unknown or deleted one."""
        if not valid_token(run_id):
            return None
        with Session(self.engine) as session:
            row = session.get(_RunRow, run_id)
            if row is None:
                return None
            return SavedRun(row.id, row.workspace, row.title, _aware(row.created), Diagnosis.from_json(row.diagnosis),
                            json.loads(row.source or "{}"), _run_notes(session, run_id), row.attachments is not None)

    def runs(self, workspace: str, limit: int = 200) -> list[RunSummary]:
        """A workspace's runs, newest first (their diagnoses are not read)."""
        if not valid_token(workspace):
            return []
        columns = (_RunRow.id, _RunRow.title, _RunRow.model_name, _RunRow.headline, _RunRow.created,
                   _RunRow.attachments.is_not(None))
        query = select(*columns).where(_RunRow.workspace == workspace).order_by(_RunRow.created.desc()).limit(limit)
        with Session(self.engine) as session:
            return [RunSummary(i, t, m, h, _aware(c), bool(a)) for i, t, m, h, c, a in session.execute(query)]

    def rename_run(self, run_id: str, title: str) -> bool:
        if not valid_token(run_id) or not title.strip():
            return False
        with Session(self.engine) as session, session.begin():
            done = session.execute(update(_RunRow).where(_RunRow.id == run_id).values(title=title.strip()[:300]))
            return done.rowcount == 1

    def delete_run(self, run_id: str) -> bool:
        """Deletes a run with its notes, its kept files and the sessions shared from it."""
        if not valid_token(run_id):
            return False
        with Session(self.engine) as session, session.begin():
            if session.get(_RunRow, run_id) is None:
                return False
            self._delete_runs(session, [run_id])
        return True

    @staticmethod
    def _delete_runs(session: Session, run_ids: list[str]) -> None:
        shared = session.execute(select(_Row.token).where(_Row.run_id.in_(run_ids))).scalars().all()
        if shared:
            session.execute(delete(_NoteRow).where(_NoteRow.token.in_(shared)))
            session.execute(delete(_Row).where(_Row.token.in_(shared)))
        session.execute(delete(_RunNoteRow).where(_RunNoteRow.run_id.in_(run_ids)))
        session.execute(delete(_RunRow).where(_RunRow.id.in_(run_ids)))

    def run_attachments(self, run_id: str) -> bytes | None:
        """The files kept with a run (None when none were kept)."""
        if not valid_token(run_id):
            return None
        with Session(self.engine) as session:
            row = session.get(_RunRow, run_id)
            return None if row is None else row.attachments


def valid_token(token: object) -> bool:
    return isinstance(token, str) and bool(TOKEN_PATTERN.match(token))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _run_notes(session: Session, run_id: str) -> dict[str, list[Note]]:
    """A run's notes, oldest first, keyed by finding."""
    query = select(_RunNoteRow).where(_RunNoteRow.run_id == run_id).order_by(_RunNoteRow.created, _RunNoteRow.id)
    return notes_by_finding(session.execute(query).scalars())


def _add_columns(engine) -> None:
    """Adds the columns newer than a table's first version (``create_all`` makes only missing tables)."""
    have = {column["name"] for column in inspect(engine).get_columns("whyzero_sessions")}
    if "run_id" in have:
        return
    try:
        with engine.begin() as connection:
            connection.execute(sql_text("ALTER TABLE whyzero_sessions ADD COLUMN run_id VARCHAR(64)"))
    except Exception:  # noqa: BLE001 - another replica added it first
        if "run_id" not in {column["name"] for column in inspect(engine).get_columns("whyzero_sessions")}:
            raise


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


_default: Store | None = None
_default_lock = threading.Lock()
_last_purge = 0.0


def default_store() -> Store:
    """One store per process, from the environment; expired sessions are purged when it opens and then
    every ``WHYZERO_PURGE_MINUTES``."""
    global _default, _last_purge

    with _default_lock:
        if _default is None or _default.url != store_url():
            _default = Store()
            _last_purge = 0.0
        if time.monotonic() - _last_purge > settings().purge_minutes * 60:
            _last_purge = time.monotonic()
            try:
                _default.purge_expired()
            except Exception:  # noqa: BLE001 - a failed purge must not take the app down; it runs again later
                _last_purge = 0.0
        return _default
