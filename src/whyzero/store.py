"""Saved debugging sessions: a Diagnosis (and optional attachments) behind an unguessable token.

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
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from whyzero.config import settings
from whyzero.diagnosis import Diagnosis

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

    def save(self, diagnosis: Diagnosis, title: str = "", days: float | None = None,
             attachments: bytes | None = None) -> tuple[str, str]:
        """Stores a diagnosis; returns (token for the link, secret that deletes it).

        ``days`` defaults to ``WHYZERO_SESSION_DAYS``.
        """
        token = secrets.token_urlsafe(TOKEN_BYTES)
        secret = secrets.token_urlsafe(TOKEN_BYTES)
        now = dt.datetime.now(dt.timezone.utc)
        days = settings().session_days if days is None else days
        row = _Row(token=token, delete_hash=_hash(secret), title=(title or diagnosis.model.get("name", ""))[:300],
                   created=now, expires=now + dt.timedelta(days=days), diagnosis=diagnosis.to_json(),
                   has_attachments=attachments is not None, attachments=attachments)
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
            notes: dict[str, list[Note]] = {}
            for finding, text in json.loads(row.legacy_notes or "{}").items():
                notes.setdefault(str(finding), []).append(Note(int(finding), text, "", _aware(row.created)))
            query = select(_NoteRow).where(_NoteRow.token == token).order_by(_NoteRow.created, _NoteRow.id)
            for note in session.execute(query).scalars():
                notes.setdefault(str(note.finding), []).append(
                    Note(note.finding, note.text, note.author, _aware(note.created)))
            return SavedSession(row.token, row.title, _aware(row.created), _aware(row.expires),
                                Diagnosis.from_json(row.diagnosis), notes, row.has_attachments)

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
        """Adds a reviewer's note on finding number ``finding``; False for an unknown or expired token."""
        if not valid_token(token) or not text.strip():
            return False
        with Session(self.engine) as session, session.begin():
            if self._live(session, token) is None:
                return False
            session.add(_NoteRow(token=token, finding=int(finding), text=text[:NOTE_CHARS],
                                 author=author.strip()[:AUTHOR_CHARS], created=dt.datetime.now(dt.timezone.utc)))
        return True

    set_note = add_note

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
        """Deletes expired sessions with their notes and attachments; returns how many."""
        now = dt.datetime.now(dt.timezone.utc)
        with Session(self.engine) as session, session.begin():
            tokens = session.execute(select(_Row.token).where(_Row.expires < now)).scalars().all()
            if tokens:
                session.execute(delete(_NoteRow).where(_NoteRow.token.in_(tokens)))
                session.execute(delete(_Row).where(_Row.token.in_(tokens)))
        return len(tokens)


def valid_token(token: object) -> bool:
    return isinstance(token, str) and bool(TOKEN_PATTERN.match(token))


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


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
