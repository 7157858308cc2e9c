"""The tokens read model: what `tokens list` and `webhooks list` show, never a secret.

Status is worked out at read time from the stored facts and the clock: revoked, expired,
rotating (rotated, in its grace period), or active. Last use is not an event: the
authentication path records it here, at most once a minute per token and process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token, issuer
from scimledger.ledger.webhooks import Webhook
from scimledger.projections import activity
from scimledger.projections.sql import SQL, Cursor, prefixed
from scimledger.projections.sql_filters import scim_datetime

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Tables(NamedTuple):
    tokens: str = "tokens"
    admins: str = "org_admins"
    webhooks: str = "webhook_endpoints"


TABLES = Tables()  # the one place the projection's table names are written
# token_usage is not made from events: every build of the projection shares it.
USAGE_DDL = """CREATE TABLE IF NOT EXISTS token_usage (
    token_id TEXT PRIMARY KEY,
    last_used TEXT NOT NULL
)"""


def ddl(prefix: str = "") -> tuple[str, ...]:
    """The projection's tables; `prefix` names another build of them (a rebuild's)."""
    tokens, admins, webhooks = prefixed(TABLES, prefix)
    return (
        f"""CREATE TABLE IF NOT EXISTS {tokens} (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        org_slug TEXT NOT NULL,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        issuer TEXT NOT NULL,
        created TEXT NOT NULL,
        expires_at TEXT,
        revoked_at TEXT,
        successor_id TEXT,
        grace_until TEXT,
        issuer_admin TEXT
    )""",
        f"CREATE INDEX IF NOT EXISTS {tokens}_org ON {tokens} (org_slug, created)",
        f"""CREATE TABLE IF NOT EXISTS {admins} (
        org_id TEXT NOT NULL,
        email TEXT NOT NULL,
        removed_at TEXT,
        PRIMARY KEY (org_id, email)
    )""",
        f"""CREATE TABLE IF NOT EXISTS {webhooks} (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        org_slug TEXT NOT NULL,
        url TEXT NOT NULL,
        types TEXT NOT NULL,
        status TEXT NOT NULL,
        created TEXT NOT NULL,
        changed TEXT NOT NULL,
        reason TEXT,
        added_position BIGINT NOT NULL,
        replay_after BIGINT,
        replay_at TEXT
    )""",
        f"CREATE INDEX IF NOT EXISTS {webhooks}_org ON {webhooks} (org_id, created)",
        USAGE_DDL,
        activity.DDL,  # console sessions' last requests: not events either
        activity.FORMS_DDL,  # and their once-only forms sent
    )


NAME = "tokens_v4"  # v3: console_forms_sent; v4: webhook_endpoints


_WEBHOOK_EVENTS = frozenset(
    {
        Webhook.Added,
        Webhook.Disabled,
        Webhook.Enabled,
        Webhook.Removed,
        Webhook.SecretRotated,
        Webhook.Replayed,
        Webhook.Failing,
    }
)


class TokensProjection:
    raw = False
    topics: tuple[type, ...] = (
        Token.TokenIssued,
        Token.TokenRevoked,
        Token.TokenRotated,
        Organization.AdminAdded,
        Organization.AdminRemoved,
        Organization.AdminDeparted,
        Organization.AdminReturned,
        *_WEBHOOK_EVENTS,
    )

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.name = prefix + NAME
        self.tables = prefixed(TABLES, prefix)

    def ddl(self, dialect: str) -> tuple[str, ...]:
        return ddl(self.prefix)

    def prepare(self, event: Any) -> Any:
        return event

    def begin(self, cursor: Cursor) -> None:
        pass

    def end(self, cursor: Cursor) -> None:
        pass

    def add(self, cursor: Cursor, event: Any, position: int) -> None:
        token_id = str(event.originator_id)
        if type(event) in _WEBHOOK_EVENTS:
            self._webhook(cursor, event, position)
        elif isinstance(event, Token.TokenIssued):
            cursor.execute(
                f"INSERT INTO {self.tables.tokens} (id, org_id, org_slug, name, scopes, issuer,"
                " created, expires_at, issuer_admin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    str(event.org_id),
                    event.org_slug,
                    event.name,
                    _encode(list(event.scopes)).decode(),
                    issuer(event.issued_by_admin, event.context.actor),
                    scim_datetime(event.timestamp),
                    scim_datetime(event.expires_at) if event.expires_at else None,
                    event.issued_by_admin,
                ),
            )
        elif isinstance(event, Organization.AdminAdded):
            cursor.execute(
                f"INSERT INTO {self.tables.admins} (org_id, email) VALUES (?, ?)"
                " ON CONFLICT (org_id, email) DO UPDATE SET removed_at = NULL",
                (token_id, event.email),
            )
        elif isinstance(event, Organization.AdminRemoved | Organization.AdminDeparted):
            left = getattr(event, "departed_at", None) or event.timestamp
            cursor.execute(
                f"UPDATE {self.tables.admins} SET removed_at = ? WHERE org_id = ? AND email = ?",
                (scim_datetime(left), token_id, event.email),
            )
        elif isinstance(event, Organization.AdminReturned):
            cursor.execute(
                f"UPDATE {self.tables.admins} SET removed_at = NULL WHERE org_id = ? AND email = ?",
                (token_id, event.email),
            )
        elif isinstance(event, Token.TokenRevoked):
            cursor.execute(
                f"UPDATE {self.tables.tokens} SET revoked_at = ? WHERE id = ?",
                (scim_datetime(event.timestamp), token_id),
            )
        elif isinstance(event, Token.TokenRotated):
            cursor.execute(
                f"UPDATE {self.tables.tokens} SET successor_id = ?, grace_until = ? WHERE id = ?",
                (str(event.successor_id), scim_datetime(event.grace_until), token_id),
            )

    def _webhook(self, cursor: Cursor, event: Any, position: int) -> None:
        webhook_id, stamp = str(event.originator_id), scim_datetime(event.timestamp)
        if isinstance(event, Webhook.Added):
            cursor.execute(
                f"INSERT INTO {self.tables.webhooks} (id, org_id, org_slug, url, types, status,"
                " created, changed, added_position) VALUES (?, ?, ?, ?, ?, 'enabled', ?, ?, ?)",
                (
                    webhook_id,
                    str(event.org_id),
                    event.org_slug,
                    event.url,
                    ",".join(event.types),
                    stamp,
                    stamp,
                    position,  # its deliveries start after it
                ),
            )
            return
        status = {
            Webhook.Disabled: "disabled",
            Webhook.Enabled: "enabled",
            Webhook.Removed: "removed",
            Webhook.Failing: "failing",
        }.get(type(event))
        reason = event.reason if isinstance(event, Webhook.Failing) else None
        if isinstance(event, Webhook.Replayed):
            cursor.execute(
                f"UPDATE {self.tables.webhooks} SET changed = ?, replay_after = ?, replay_at = ?"
                " WHERE id = ?",
                (stamp, event.after_position, stamp, webhook_id),
            )
            return
        if status is None:  # a secret rotated: the status stays
            cursor.execute(
                f"UPDATE {self.tables.webhooks} SET changed = ? WHERE id = ?", (stamp, webhook_id)
            )
            return
        cursor.execute(
            f"UPDATE {self.tables.webhooks} SET status = ?, changed = ?, reason = ? WHERE id = ?",
            (status, stamp, reason, webhook_id),
        )


@dataclass(frozen=True)
class WebhookView:
    id: str
    org: str
    url: str
    types: str  # comma-separated; empty: every type
    status: str  # enabled, disabled, failing, removed
    created: str
    changed: str
    reason: str | None  # why it is failing


WEBHOOK_COLUMNS = tuple(column.name for column in fields(WebhookView))


def list_webhooks(
    cursor: Cursor, org_slug: str | None, *, removed: bool = False
) -> list[WebhookView]:
    """The endpoints (of one organization), oldest first; removed ones only if asked."""
    where = ["org_slug = ?"] if org_slug is not None else []
    columns = ", ".join("org_slug AS org" if c == "org" else c for c in WEBHOOK_COLUMNS)
    if not removed:
        where.append("status <> 'removed'")
    cursor.execute(
        f"SELECT {columns} FROM {TABLES.webhooks}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY created, id",
        (org_slug,) if org_slug is not None else (),
    )
    return [WebhookView(**{c: row[c] for c in WEBHOOK_COLUMNS}) for row in cursor.fetchall()]


@dataclass(frozen=True)
class TokenView:
    id: str
    org: str
    name: str
    scopes: list[str]
    issuer: str
    created: str
    expires: str | None
    last_used: str | None
    status: str
    hint: str  # what to do about it, e.g. the successor command for a departed issuer

    def as_dict(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in COLUMNS}


COLUMNS = tuple(column.name for column in fields(TokenView))


def _status(row: Any, now: str) -> tuple[str, str]:
    if row["revoked_at"] is not None:
        return "revoked", ""
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return "expired", ""
    if row["grace_until"] is not None:
        if row["grace_until"] <= now:
            return "expired", ""
        return "rotating", f"successor {row['successor_id']}; works until {row['grace_until']}"
    if row["departed"]:
        return "issuer departed", (
            f"scimledger tokens rotate {row['id']} --by <another admin of {row['org_slug']}>"
        )
    return "active", ""


def list_tokens(cursor: Cursor, org_slug: str | None, now: datetime) -> list[TokenView]:
    """The tokens (of one organization), oldest first."""
    where = "WHERE t.org_slug = ?" if org_slug is not None else ""
    # An issuer departs when removed as an admin, or when their own SCIM user is deactivated
    # or deleted (AdminDeparted, recorded by the ledger).
    cursor.execute(
        f"SELECT t.*, u.last_used, EXISTS (SELECT 1 FROM {TABLES.admins} a"
        " WHERE a.org_id = t.org_id AND a.email = t.issuer_admin"
        " AND a.removed_at IS NOT NULL) AS departed"
        f" FROM {TABLES.tokens} t LEFT JOIN token_usage u ON u.token_id = t.id {where}"
        " ORDER BY t.created, t.id",
        (org_slug,) if org_slug is not None else (),
    )
    stamp = scim_datetime(now)
    views = []
    for row in cursor.fetchall():
        status, hint = _status(row, stamp)
        views.append(
            TokenView(
                id=row["id"],
                org=row["org_slug"],
                name=row["name"],
                scopes=_decode(row["scopes"]),
                issuer=row["issuer"],
                created=row["created"],
                expires=row["expires_at"],
                last_used=row["last_used"],
                status=status,
                hint=hint,
            )
        )
    return views


class UsageRecorder:
    """Records a token's last use, at most once per `interval` per token in this process:
    a busy connector costs one small write a minute, not one per request."""

    def __init__(self, sql: SQL, interval: timedelta = timedelta(minutes=1)) -> None:
        self._sql = sql
        self._interval = interval
        self._written: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def used(self, token_id: str, now: datetime) -> bool:
        """Records the use if the last record is older than the interval; True if written."""
        with self._lock:
            last = self._written.get(token_id)
            if last is not None and now - last < self._interval:
                return False
            self._written[token_id] = now
        with self._sql.transaction(commit=True) as cursor:
            cursor.execute(
                "INSERT INTO token_usage (token_id, last_used) VALUES (?, ?)"
                " ON CONFLICT (token_id) DO UPDATE SET last_used = excluded.last_used",
                (token_id, scim_datetime(now)),
            )
        return True


def departure_candidates(sql: SQL, catch_up: Callable[[], object]) -> list[UUID]:
    """Tokens issued for an admin and not revoked: those a departure policy may revoke
    (ledger.departures), once the read model is caught up by `catch_up`."""
    catch_up()
    with sql.transaction(commit=False) as cursor:
        cursor.execute(
            f"SELECT id FROM {TABLES.tokens} WHERE issuer_admin IS NOT NULL AND revoked_at IS NULL"
            " ORDER BY id"
        )
        return [UUID(row["id"]) for row in cursor.fetchall()]


def organizations(sql: SQL) -> list[tuple[str, str]]:
    """(id, slug) of every organization (each has had a token: issuing one makes it)."""
    with sql.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT DISTINCT org_id, org_slug FROM {TABLES.tokens} ORDER BY org_slug")
        return [(str(row["org_id"]), str(row["org_slug"])) for row in cursor.fetchall()]
