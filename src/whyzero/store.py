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
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Boolean, DateTime, LargeBinary, String, Text, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from whyzero.diagnosis import Diagnosis

TOKEN_BYTES = 32  # 256 bits
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
DEFAULT_DAYS = int(os.environ.get("WHYZERO_SESSION_DAYS", "30"))


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
    notes: Mapped[str] = mapped_column(Text, default="{}")
    has_attachments: Mapped[bool] = mapped_column(Boolean, default=False)
    attachments: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


@dataclass
class SavedSession:
    token: str
    title: str
    created: dt.datetime
    expires: dt.datetime
    diagnosis: Diagnosis
    notes: dict[str, str] = field(default_factory=dict)
    has_attachments: bool = False


def store_url() -> str:
    url = os.environ.get("WHYZERO_STORE_URL")
    if url:
        return url
    folder = Path(os.environ.get("WHYZERO_DATA_DIR", Path.home() / ".local" / "share" / "whyzero"))
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

    def save(self, diagnosis: Diagnosis, title: str = "", days: int = DEFAULT_DAYS,
             attachments: bytes | None = None) -> tuple[str, str]:
        """Stores a diagnosis; returns (token for the link, secret that deletes it)."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        secret = secrets.token_urlsafe(TOKEN_BYTES)
        now = dt.datetime.now(dt.timezone.utc)
        row = _Row(token=token, delete_hash=_hash(secret), title=(title or diagnosis.model.get("name", ""))[:300],
                   created=now, expires=now + dt.timedelta(days=days), diagnosis=diagnosis.to_json(), notes="{}",
                   has_attachments=attachments is not None, attachments=attachments)
        with Session(self.engine) as session, session.begin():
            session.add(row)
        return token, secret

    def load(self, token: str) -> SavedSession | None:
        """The session behind a token; None for a malformed, unknown or expired one."""
        if not valid_token(token):
            return None
        with Session(self.engine) as session:
            row = session.get(_Row, token)
            if row is None or _aware(row.expires) < dt.datetime.now(dt.timezone.utc):
                return None
            return SavedSession(row.token, row.title, _aware(row.created), _aware(row.expires),
                                Diagnosis.from_json(row.diagnosis), json.loads(row.notes), row.has_attachments)

    def attachments(self, token: str) -> bytes | None:
        if not valid_token(token):
            return None
        with Session(self.engine) as session:
            row = session.get(_Row, token)
            return None if row is None else row.attachments

    def set_note(self, token: str, finding: int, text: str) -> bool:
        """A reviewer's note on finding number ``finding``; returns False for an unknown token."""
        if not valid_token(token):
            return False
        with Session(self.engine) as session, session.begin():
            row = session.execute(select(_Row).where(_Row.token == token).with_for_update()).scalar_one_or_none()
            if row is None:
                return False
            notes = json.loads(row.notes)
            notes[str(finding)] = text[:5000]
            row.notes = json.dumps(notes)
        return True

    def delete(self, token: str, secret: str) -> bool:
        """Deletes a session given the creator's secret."""
        if not valid_token(token):
            return False
        with Session(self.engine) as session, session.begin():
            row = session.get(_Row, token)
            if row is None or not hmac.compare_digest(row.delete_hash, _hash(secret)):
                return False
            session.delete(row)
        return True

    def purge_expired(self) -> int:
        now = dt.datetime.now(dt.timezone.utc)
        with Session(self.engine) as session, session.begin():
            rows = session.execute(select(_Row).where(_Row.expires < now)).scalars().all()
            for row in rows:
                session.delete(row)
        return len(rows)


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


def default_store() -> Store:
    """One store per process, from the environment."""
    global _default
    with _default_lock:
        if _default is None or _default.url != store_url():
            _default = Store()
        return _default
