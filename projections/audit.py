"""The audit trail: one entry per event, in log order, for compliance reviewers.

Each entry says who (the token, its name and who issued it; or the operator command and OS
user), did what (an action), to what (resource type, id, and its userName or displayName
at that time), exactly how (each attribute's value before and after; passwords only as
"changed"), when, and through which request (id, client address, user agent).

It is a projection like the SCIM read model: built from the events alone, exactly once,
rebuildable. Before-values come from the trail's own record of each subject, never from
another read model.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from scimledger.ledger.groups import Group
from scimledger.ledger.names import normalize_name
from scimledger.ledger.organizations import DEFAULT_SETTINGS, Organization
from scimledger.ledger.sealing import ERASED
from scimledger.ledger.sessions import ConsoleSession, SignInLink
from scimledger.ledger.tokens import Token
from scimledger.ledger.users import User, apply_changes
from scimledger.ledger.webhooks import Webhook
from scimledger.projections import spreadsheet
from scimledger.projections.sql import Cursor, Row, prefixed
from scimledger.projections.sql_filters import scim_datetime

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_org_text = lru_cache(maxsize=1024)(str)  # an organization's id, in each of its entries


class Tables(NamedTuple):
    entries: str = "audit_entries"
    subjects: str = "audit_subjects"


TABLES = Tables()  # the one place the trail's table names are written


def ddl(prefix: str = "") -> tuple[str, ...]:
    """The trail's tables; `prefix` names another build of them (a rebuild's)."""
    entries, subjects = prefixed(TABLES, prefix)
    return (
        f"""CREATE TABLE IF NOT EXISTS {entries} (
        position BIGINT PRIMARY KEY,
        org_id TEXT NOT NULL,
        occurred_at TEXT NOT NULL,
        actor_kind TEXT NOT NULL,
        actor_id TEXT NOT NULL,
        actor_name TEXT NOT NULL,
        actor_issuer TEXT,
        action TEXT NOT NULL,
        subject_type TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        subject_name TEXT,
        subject_name_norm TEXT,
        changes TEXT,
        request_id TEXT,
        client_address TEXT,
        user_agent TEXT,
        data TEXT
    )""",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_org ON {entries} (org_id, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_subject ON {entries} (subject_id, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_subject_name"
        f" ON {entries} (subject_name_norm, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_actor ON {entries} (actor_id, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_actor_name ON {entries} (actor_name, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_action ON {entries} (action, occurred_at)",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_org_action"
        f" ON {entries} (org_id, action, position)",
        f"CREATE INDEX IF NOT EXISTS {prefix}audit_org_time"
        f" ON {entries} (org_id, occurred_at, position)",
        f"""CREATE TABLE IF NOT EXISTS {subjects} (
        subject_id TEXT PRIMARY KEY,
        state TEXT NOT NULL
    )""",
    )


COLUMNS = (
    "position",
    "org_id",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "actor_issuer",
    "action",
    "subject_type",
    "subject_id",
    "subject_name",
    "changes",
    "request_id",
    "client_address",
    "user_agent",
)

Changes = dict[str, Any]
Entry = tuple[str, str, str | None, Changes]  # action, subject type, subject name, changes


def _change(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after}


# v2: indexes for the console's filters; roles of people; v3: data; v4: a user's creation's
# changes read from its data, users' and groups' states from their latest entries.
NAME = "audit_trail_v4"

# Every action an entry can have (the handlers below), for pickers such as the console's.
ACTIONS = (
    "organization.created",
    "organization.settings_changed",
    "schema.declared",
    "schema.removed",
    "admin.added",
    "admin.removed",
    "admin.departed",
    "admin.returned",
    "token.issued",
    "token.revoked",
    "token.rotated",
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.password_changed",
    "user.deleted",
    "user.erased",
    "group.created",
    "group.renamed",
    "group.external_id_changed",
    "group.updated",
    "group.members_added",
    "group.members_removed",
    "group.deleted",
    "console.link_issued",
    "console.link_used",
    "console.signed_in",
    "console.signed_out",
    "webhook.added",
    "webhook.disabled",
    "webhook.enabled",
    "webhook.removed",
    "webhook.secret_rotated",
    "webhook.replayed",
    "webhook.failing",
)


KEPT_ON_ERASURE = ("active", "password")  # changes of an erased user's that are not personal


def erased_changes(changes: Changes) -> Changes:
    """An erased user's entry's changes: each attribute's before and after `[erased]` (None
    where there was none), whether they were active and that the password changed kept."""
    return {
        key: (
            change
            if key in KEPT_ON_ERASURE or not isinstance(change, dict)
            else {side: None if value is None else ERASED for side, value in change.items()}
        )
        for key, change in changes.items()
    }


def flattened(changes: Changes) -> Changes:
    """An entry's changes as people read them (the console, the CLI): an extension's values,
    stored as one change of the object under its URN, as one change per attribute that
    changed (`urn:...:User:costCenter: 42 -> 43`)."""
    out: Changes = {}
    for key, change in changes.items():
        if (
            key.startswith("urn:")
            and isinstance(change, dict)
            and set(change) == {"before", "after"}
            and all(side is None or isinstance(side, dict) for side in change.values())
        ):
            before, after = change["before"] or {}, change["after"] or {}
            for name in [*before, *(name for name in after if name not in before)]:
                if before.get(name) != after.get(name):
                    out[f"{key}:{name}"] = _change(before.get(name), after.get(name))
        else:
            out[key] = change
    return out


# The subjects whose entries carry the resource as it stands after the change (`data`),
# but when it is deleted. The trail remembers them by that: their state is their latest
# entry's `data` (the other subjects' are in the subjects' table).
RESOURCES = ("User", "Group")
DELETIONS = ("user.deleted", "user.erased", "group.deleted")

# A user's creation's entry stores no changes (NULL): they are each value of the user it made,
# from nothing, which its `data` holds (stored twice, they took as many bytes as the user).
# `stored_changes` reads an entry's changes either way; an erasure writes them out.
CHANGES_IN_DATA = "user.created"


def created_changes(state: dict[str, Any]) -> Changes:
    """A user's creation's changes: each of its attributes, then whether active, from none."""
    changes = {key: _change(None, value) for key, value in state["attributes"].items()}
    changes["active"] = _change(None, state["active"])
    return changes


def stored_changes(changes: str | None, data: str | None) -> str:
    """An entry's changes (JSON), from its row's `changes` and `data`."""
    if changes is not None:
        return changes
    if data is None:  # never written so: see AuditProjection._entry
        raise ValueError("an audit entry has neither its changes nor its data")
    return _encode(created_changes(_decode(data))).decode()


class AuditProjection:
    raw = False

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.name = prefix + NAME
        self.tables = prefixed(TABLES, prefix)
        self._handlers: dict[type, Callable[[Any], Entry]] = {
            Organization.OrganizationCreated: self._organization_created,
            Organization.AdminAdded: self._admin_added,
            Organization.AdminRemoved: self._admin("removed"),
            Organization.AdminDeparted: self._admin("departed"),
            Organization.AdminReturned: self._admin("returned"),
            Organization.SettingsChanged: self._settings_changed,
            Organization.SchemaDeclared: self._schema_declared,
            Organization.SchemaRemoved: self._schema_removed,
            Token.TokenIssued: self._token_issued,
            Token.TokenRevoked: self._token_revoked,
            Token.TokenRotated: self._token_rotated,
            User.UserCreated: self._user_created,
            User.ProfileUpdated: self._profile_updated,
            User.UserDeactivated: self._active(False),
            User.UserReactivated: self._active(True),
            User.PasswordChanged: self._password_changed,
            User.UserDeleted: self._user_deleted,
            User.UserErased: self._user_erased,
            Group.GroupCreated: self._group_created,
            Group.GroupRenamed: self._group_renamed,
            Group.GroupExternalIdChanged: self._group_external_id_changed,
            Group.MembersAdded: self._members("added"),
            Group.MembersRemoved: self._members("removed"),
            Group.GroupDeleted: self._group_deleted,
            Group.ExtensionsChanged: self._group_updated,
            SignInLink.Issued: self._link_issued,
            SignInLink.Used: self._console("link_used"),
            ConsoleSession.Started: self._signed_in,
            ConsoleSession.Ended: self._console("signed_out"),
            Webhook.Added: self._webhook_added,
            Webhook.Disabled: self._webhook("disabled"),
            Webhook.Enabled: self._webhook("enabled"),
            Webhook.Removed: self._webhook("removed"),
            Webhook.SecretRotated: self._webhook("secret_rotated"),
            Webhook.Replayed: self._webhook("replayed"),
            Webhook.Failing: self._webhook("failing"),
        }
        self.topics: tuple[type, ...] = tuple(self._handlers)
        self._resource_events = frozenset(
            topic for topic in self.topics if topic.__qualname__.split(".")[0] in RESOURCES
        )
        self._entries: list[tuple[Any, ...]] = []
        # The event being entered, as `end` sets them: its id's text and its time's.
        self._subject = ""
        self._stamp = ""
        self._states: dict[str, dict[str, Any]] = {}
        self._changed: set[str] = set()
        self._erased: list[str] = []

    def ddl(self, dialect: str) -> tuple[str, ...]:
        return ddl(self.prefix)

    def prepare(self, event: Any) -> Any:
        return event

    def begin(self, cursor: Cursor) -> None:
        # A batch's entries and subject states are written together at its end.
        self._entries, self._states, self._changed, self._erased = [], {}, set(), []
        self._pending: list[tuple[Any, int]] = []

    def add(self, cursor: Cursor, event: Any, position: int) -> None:
        if type(event) in self._handlers:
            self._pending.append((event, position))

    def end(self, cursor: Cursor) -> None:
        pending, self._pending = self._pending, []
        # The subjects' states, read in one query for the batch (a round trip each would
        # bound a rebuild at a few thousand events a second).
        # Each id's text, once: an entry needs it four times, and a UUID makes it anew each.
        subjects = [str(event.originator_id) for event, _ in pending]
        resources = {
            subject
            for (event, _), subject in zip(pending, subjects, strict=True)
            if type(event) in self._resource_events
        }
        others = sorted(set(subjects) - resources)
        self._states = {key: {} for key in subjects}
        for row in cursor.fetch_in(
            f"SELECT subject_id, state FROM {self.tables.subjects}", "subject_id", others
        ):
            self._states[row["subject_id"]] = _decode(row["state"])
        for subject, data in self._latest_data(cursor, sorted(resources)):
            if data is not None:
                state = _decode(data)
                del state["version"]  # the event's, not the subject's
                self._states[subject] = state
        for (event, position), subject in zip(pending, subjects, strict=True):
            self._subject = subject
            self._stamp = scim_datetime(event.timestamp)
            self._entry(event, position)
        # Entries are new rows, always (their position is the key): COPY on PostgreSQL.
        cursor.insert_rows(
            self.tables.entries, (*COLUMNS, "subject_name_norm", "data"), self._entries
        )
        cursor.replace_rows(
            self.tables.subjects,
            ("subject_id", "state"),
            [
                (key, _encode(self._states[key]).decode())
                for key in sorted(self._changed - resources)
            ],
        )
        for subject_id in self._erased:
            self._erase_entries(cursor, subject_id)
        self._entries, self._states, self._changed, self._erased = [], {}, set(), []

    def _latest_data(self, cursor: Cursor, subjects: list[str]) -> list[Sequence[Any]]:
        """Each of `subjects` with its latest entry's `data` (None: none yet, or deleted)."""
        if not subjects:
            return []
        param: object
        if cursor.dialect == "postgresql":
            keys, param = "unnest(?::text[]) AS k(subject_id)", subjects
        else:
            keys, param = "(SELECT value AS subject_id FROM json_each(?)) AS k", _encode(subjects)
        table = self.tables.entries
        return cursor.fetch_tuples(
            f"SELECT k.subject_id, (SELECT e.data FROM {table} e"
            " WHERE e.subject_id = k.subject_id"
            f" ORDER BY e.position DESC LIMIT 1) FROM {keys}",
            (param,),
        )

    def _erase_entries(self, cursor: Cursor, subject_id: str) -> None:
        """An erased user's entries, with every value of theirs `[erased]`: their names and
        each attribute's before and after (but whether they were active, and that their
        password changed); their `data` gone. The entries, actors, times, requests and
        actions stay. A rebuild reads their events erased, and comes here too: it ends with
        the same rows."""
        cursor.execute(
            f"SELECT position, subject_name, changes, data FROM {self.tables.entries}"
            " WHERE subject_id = ? AND action <> 'user.erased'",
            (subject_id,),
        )
        rows = []
        for row in cursor.fetchall():
            name = None if row["subject_name"] is None else ERASED
            stored = stored_changes(row["changes"], row["data"])
            changes = _encode(erased_changes(_decode(stored))).decode()
            rows.append((name, name, changes, row["position"]))
        cursor.executemany(
            f"UPDATE {self.tables.entries} SET subject_name = ?, subject_name_norm = ?,"
            " changes = ?, data = NULL WHERE position = ?",
            rows,
        )

    def _entry(self, event: Any, position: int) -> None:
        action, subject_type, subject_name, changes = self._handlers[type(event)](event)
        context = event.context
        actor = context.actor
        request = context.request
        stamp = self._stamp
        data = None
        if subject_type in RESOURCES and action not in DELETIONS:
            # The resource as it stands after the change (the events feed's `data`); when it
            # was last modified is the entry's `occurred_at`, not stored twice.
            state = self._states[self._subject]
            after = {**state, "version": event.originator_version}
            data = _encode(after).decode()
        self._entries.append(
            (
                position,
                _org_text(context.org_id),
                stamp,
                actor.kind,
                actor.id,
                actor.name,
                actor.issued_by,
                action,
                subject_type,
                self._subject,
                subject_name,
                None if action == CHANGES_IN_DATA else _encode(changes).decode(),
                request.request_id,
                request.client_address,
                request.user_agent,
                normalize_name(subject_name) if subject_name else None,
                data,
            )
        )

    # The trail's own memory of each subject, for before-values: the subject of the event
    # being entered (`_subject`, which `end` sets).

    def _state(self) -> dict[str, Any]:
        return self._states[self._subject]  # read for the batch by `end`

    def _remember(self, state: dict[str, Any]) -> None:
        key = self._subject
        self._states[key] = state
        self._changed.add(key)

    # Organizations and tokens

    def _organization_created(self, event: Any) -> Entry:
        return (
            "organization.created",
            "Organization",
            event.slug,
            {"slug": _change(None, event.slug)},
        )

    def _admin_added(self, event: Any) -> Entry:
        changes = {"admins": {"added": [event.email]}, "role": event.role}
        return "admin.added", "Organization", None, changes

    def _admin(self, how: str) -> Callable[[Any], Entry]:
        def handler(event: Any) -> Entry:
            return f"admin.{how}", "Organization", None, {"admins": {how: [event.email]}}

        return handler

    def _settings_changed(self, event: Any) -> Entry:
        state = self._state()
        before = state.get("settings", DEFAULT_SETTINGS)
        self._remember({**state, "settings": {**before, **event.changes}})
        changes = {key: _change(before.get(key), value) for key, value in event.changes.items()}
        return "organization.settings_changed", "Organization", None, changes

    def _schema_declared(self, event: Any) -> Entry:
        """Each declaration's resource type, whether it is required, and its attributes'
        names, before and after (the whole document is the event's: `scimledger schemas
        show`)."""
        state = self._state()
        schemas = state.get("schemas", {})
        before = schemas.get(event.schema_id, {})
        after = {
            "resourceType": event.resource_type,
            "required": event.required,
            "attributes": [a["name"] for a in event.document["attributes"]],
        }
        self._remember({**state, "schemas": {**schemas, event.schema_id: after}})
        changes = {
            key: _change(before.get(key), value)
            for key, value in after.items()
            if before.get(key) != value
        }
        return "schema.declared", "Organization", event.schema_id, changes

    def _schema_removed(self, event: Any) -> Entry:
        state = self._state()
        schemas = state.get("schemas", {})
        self._remember(
            {**state, "schemas": {k: v for k, v in schemas.items() if k != event.schema_id}},
        )
        changes = {"schema": _change(event.schema_id, None), "values_held": event.values}
        return "schema.removed", "Organization", event.schema_id, changes

    def _token_issued(self, event: Any) -> Entry:
        self._remember({"name": event.name})
        expires = event.expires_at.isoformat() if event.expires_at else None
        changes = {
            "name": _change(None, event.name),
            "scopes": _change(None, list(event.scopes)),
            "expires_at": _change(None, expires),
        }
        if event.issued_by_admin:
            changes["issued_by_admin"] = _change(None, event.issued_by_admin)
        return "token.issued", "Token", event.name, changes

    def _token_revoked(self, event: Any) -> Entry:
        name = self._state().get("name")
        return "token.revoked", "Token", name, {"revoked": _change(False, True)}

    def _token_rotated(self, event: Any) -> Entry:
        name = self._state().get("name")
        return (
            "token.rotated",
            "Token",
            name,
            {
                "successor": _change(None, str(event.successor_id)),
                "grace_until": _change(None, event.grace_until.isoformat()),
            },
        )

    # Console sign-in: the link's or session's person is its subject's name; no secret, no hash

    def _link_issued(self, event: Any) -> Entry:
        self._remember({"email": event.email})
        expires = {"expires_at": _change(None, scim_datetime(event.expires_at))}
        return "console.link_issued", "SignInLink", event.email, expires

    def _signed_in(self, event: Any) -> Entry:
        self._remember({"email": event.email})
        changes = {"method": event.method, "role": event.role}
        return "console.signed_in", "ConsoleSession", event.email, changes

    def _console(self, action: str) -> Callable[[Any], Entry]:
        def handler(event: Any) -> Entry:
            kind = "SignInLink" if action == "link_used" else "ConsoleSession"
            return f"console.{action}", kind, self._state().get("email"), {}

        return handler

    # Webhook endpoints: their URL is their name; their signing secret is never in an event

    def _webhook_added(self, event: Any) -> Entry:
        self._remember({"url": event.url})
        changes = {"url": _change(None, event.url), "types": _change(None, list(event.types))}
        return "webhook.added", "Webhook", event.url, changes

    def _webhook(self, how: str) -> Callable[[Any], Entry]:
        def handler(event: Any) -> Entry:
            changes: Changes = {}
            if isinstance(event, Webhook.SecretRotated):
                until = scim_datetime(event.previous_until)
                changes = {"previous_secret_until": _change(None, until)}
            elif isinstance(event, Webhook.Failing):
                changes = {"reason": event.reason}
            elif isinstance(event, Webhook.Replayed):
                changes = {"replay_after": f"evt_{event.after_position}"}
            return f"webhook.{how}", "Webhook", self._state().get("url"), changes

        return handler

    # Users

    def _user_created(self, event: Any) -> Entry:
        attributes = dict(event.attributes)
        state = {"attributes": attributes, "active": event.active, "created": self._stamp}
        self._remember(state)
        return "user.created", "User", attributes["userName"], created_changes(state)

    def _profile_updated(self, event: Any) -> Entry:
        state = self._state()
        before = state.get("attributes", {})
        after = apply_changes(before, event.changes)
        self._remember({**state, "attributes": after})
        changes = {key: _change(before.get(key), value) for key, value in event.changes.items()}
        return "user.updated", "User", after.get("userName"), changes

    def _active(self, active: bool) -> Callable[[Any], Entry]:
        def handler(event: Any) -> Entry:
            state = self._state()
            self._remember({**state, "active": active})
            action = "user.reactivated" if active else "user.deactivated"
            name = state.get("attributes", {}).get("userName")
            return action, "User", name, {"active": _change(not active, active)}

        return handler

    def _password_changed(self, event: Any) -> Entry:
        name = self._state().get("attributes", {}).get("userName")
        return "user.password_changed", "User", name, {"password": "changed"}

    def _user_deleted(self, event: Any) -> Entry:
        name = self._state().get("attributes", {}).get("userName")
        return "user.deleted", "User", name, {}

    def _user_erased(self, event: Any) -> Entry:
        self._remember({"erased": True})
        self._erased.append(self._subject)
        return "user.erased", "User", ERASED, {"reason": event.reason}

    # Groups

    def _group_created(self, event: Any) -> Entry:
        self._remember(
            {
                "displayName": event.display_name,
                "externalId": event.external_id,
                "created": self._stamp,
            },
        )
        changes = {"displayName": _change(None, event.display_name)}
        if event.external_id is not None:
            changes["externalId"] = _change(None, event.external_id)
        return "group.created", "Group", event.display_name, changes

    def _group_renamed(self, event: Any) -> Entry:
        state = self._state()
        self._remember({**state, "displayName": event.display_name})
        return (
            "group.renamed",
            "Group",
            event.display_name,
            {"displayName": _change(state.get("displayName"), event.display_name)},
        )

    def _group_external_id_changed(self, event: Any) -> Entry:
        state = self._state()
        self._remember({**state, "externalId": event.external_id})
        return (
            "group.external_id_changed",
            "Group",
            state.get("displayName"),
            {"externalId": _change(state.get("externalId"), event.external_id)},
        )

    def _group_updated(self, event: Any) -> Entry:
        """Values of the organization's declared group extensions changed."""
        state = self._state()
        before = state.get("extensions", {})
        self._remember({**state, "extensions": apply_changes(before, event.changes)})
        changes = {key: _change(before.get(key), value) for key, value in event.changes.items()}
        return "group.updated", "Group", state.get("displayName"), changes

    def _members(self, how: str) -> Callable[[Any], Entry]:
        def handler(event: Any) -> Entry:
            name = self._state().get("displayName")
            ids = [str(user_id) for user_id in event.user_ids]
            return f"group.members_{how}", "Group", name, {"members": {how: ids}}

        return handler

    def _group_deleted(self, event: Any) -> Entry:
        return "group.deleted", "Group", self._state().get("displayName"), {}


# Reading the trail


@dataclass(frozen=True)
class AuditQuery:
    org_id: str | None = None
    subject: str | None = None  # a subject's id, or a userName/displayName it had
    # A subject's id alone: its history, which a userName spelling another subject's id
    # must not join.
    subject_id: str | None = None
    actor: str | None = None  # a token id, an actor name (token name, OS user)
    actions: tuple[str, ...] = ()
    since: str | None = None  # xsd:dateTime, stored form (see scim_datetime)
    until: str | None = None
    after: int = 0  # the cursor: entries after this position
    before: int | None = None  # and before this one (newest first, the console's timelines)


# Reading the trail. Entries come in log order; with a time range, in the order they
# occurred (ties in log order), so that a range's first page is read from the time index
# rather than by sorting every entry in it. The cursor is a position either way.

PROBED = 2000  # entries a probe counts up to (SQLite: see `_leader`)
_KINDS = ("subject", "actor", "action", "time")


def _timed(query: AuditQuery) -> bool:
    return query.since is not None or query.until is not None


def _where(
    query: AuditQuery, cursor: Cursor | None = None, leader: str | None = None
) -> tuple[str, list[Any]]:
    """The query's conditions. On SQLite, `leader` names the filter whose index reads the
    entries; the others are written `+column`, which SQLite never reads an index for.
    ("order": none of the filters, but the order's own index.) On PostgreSQL the planner
    chooses from its statistics."""
    hinted = leader is not None and cursor is not None and cursor.dialect == "sqlite"
    timed = _timed(query)
    # The organization's indexes lead with the order, an action or a time range (the cursor
    # bounding where they start); the subject's and the actor's have no organization.
    if leader in ("subject", "actor"):
        used = {leader}
    elif leader == "order" and timed and query.actions:
        used = {"action", "time"}  # (action, occurred_at): in time order for each action
    elif leader == "time" or (leader == "order" and timed):
        used = {"org", "time"}
    else:  # the log order, of the organization or of an action in it
        used = {"org", "position", "action"}

    def col(kind: str, column: str) -> str:
        return f"+{column}" if hinted and kind not in used else column

    clauses: list[str] = []
    params: list[Any] = []
    if timed and cursor is not None and (query.after > 0 or query.before is not None):
        if query.after > 0:
            clauses.append("(occurred_at, position) > (?, ?)")
            params += [_moment_at(cursor, query.after, before=False), query.after]
        if query.before is not None:
            clauses.append("(occurred_at, position) < (?, ?)")
            params += [_moment_at(cursor, query.before, before=True), query.before]
    else:
        clauses.append(f"{col('position', 'position')} > ?")
        params.append(query.after)
        if query.before is not None:
            clauses.append(f"{col('position', 'position')} < ?")
            params.append(query.before)
    if query.org_id is not None:
        # The organization's indexes serve the order, an action and a time range, not the
        # subject's or the actor's.
        clauses.append(f"{col('org', 'org_id')} = ?")
        params.append(query.org_id)
    if query.subject is not None:
        clauses.append(
            f"({col('subject', 'subject_id')} = ? OR {col('subject', 'subject_name_norm')} = ?)"
        )
        params += [query.subject.lower(), normalize_name(query.subject)]
    if query.subject_id is not None:
        clauses.append(f"{col('subject', 'subject_id')} = ?")
        params.append(query.subject_id)
    if query.actor is not None:
        clauses.append(f"({col('actor', 'actor_id')} = ? OR {col('actor', 'actor_name')} = ?)")
        params += [query.actor, query.actor]
    if query.actions:
        clauses.append(f"{col('action', 'action')} IN ({', '.join('?' * len(query.actions))})")
        params += list(query.actions)
    if query.since is not None:
        clauses.append(f"{col('time', 'occurred_at')} >= ?")
        params.append(query.since)
    if query.until is not None:
        clauses.append(f"{col('time', 'occurred_at')} < ?")
        params.append(query.until)
    return " AND ".join(clauses), params


def _moment_at(cursor: Cursor, position: int, *, before: bool) -> str:
    """When the entry at a cursor's position occurred (or the nearest entry's on the side
    the page reads from, for a position that holds none)."""
    op, order = (">=", "ASC") if before else ("<=", "DESC")
    cursor.execute(
        f"SELECT occurred_at FROM {TABLES.entries} WHERE position {op} ?"
        f" ORDER BY position {order} LIMIT 1",
        (position,),
    )
    row = cursor.fetchone()
    return str(row["occurred_at"]) if row is not None else ("" if not before else "~")


def _leader(cursor: Cursor, query: AuditQuery) -> str | None:
    """Which filter's index should read the entries (SQLite). Its planner prefers an index
    in the page's order whatever the filters, which reads every entry of an organization to
    find a rare one; so each filter's matches are counted (up to PROBED, on its own index)
    and the rarest leads, if rare enough; otherwise the order's index does."""
    if cursor.dialect != "sqlite":
        return None
    table = TABLES.entries
    probes: dict[str, tuple[str, list[Any]]] = {}
    if query.subject is not None:
        probes["subject"] = (
            f"SELECT 1 FROM {table} WHERE subject_id = ?"
            f" UNION ALL SELECT 1 FROM {table} WHERE subject_name_norm = ?",
            [query.subject.lower(), normalize_name(query.subject)],
        )
    if query.subject_id is not None:
        probes["subject"] = (f"SELECT 1 FROM {table} WHERE subject_id = ?", [query.subject_id])
    if query.actor is not None:
        probes["actor"] = (
            f"SELECT 1 FROM {table} WHERE actor_id = ?"
            f" UNION ALL SELECT 1 FROM {table} WHERE actor_name = ?",
            [query.actor, query.actor],
        )
    if query.org_id is not None and query.actions:
        marks = ", ".join("?" * len(query.actions))
        probes["action"] = (
            f"SELECT 1 FROM {table} WHERE org_id = ? AND action IN ({marks})",
            [query.org_id, *query.actions],
        )
    if query.org_id is not None and _timed(query):
        probes["time"] = (
            f"SELECT 1 FROM {table} WHERE org_id = ? AND occurred_at >= ? AND occurred_at < ?",
            [query.org_id, query.since or "", query.until or "~"],
        )
    if query.org_id is None:
        return None
    counts: dict[str, int] = {}
    for kind, (select, params) in probes.items():
        cursor.execute(
            f"SELECT COUNT(*) AS n FROM ({select} LIMIT ?) AS probe", (*params, PROBED + 1)
        )
        row = cursor.fetchone()
        counts[kind] = int(row["n"]) if row is not None else 0
    rarest = min(counts, key=counts.__getitem__, default=None)
    return rarest if rarest is not None and counts[rarest] <= PROBED else "order"


def entry(row: Row) -> dict[str, Any]:
    """One entry as plain data (JSON-ready)."""
    out = {column: row[column] for column in COLUMNS}
    out["position"] = int(out["position"])
    out["changes"] = _decode(stored_changes(row["changes"], row["data"]))
    return out


def csv_row(item: dict[str, Any]) -> list[Any]:
    """One entry as a CSV row in COLUMNS order, its changes as JSON."""
    return [_encode(item[c]).decode() if c == "changes" else item[c] for c in COLUMNS]


def page(
    cursor: Cursor, query: AuditQuery, limit: int, *, newest_first: bool = False
) -> list[dict[str, Any]]:
    """Up to `limit` entries between `query.after` and `query.before` (keyset pagination):
    the oldest of them in log order, or the newest, newest first."""
    where, params = _where(query, cursor, _leader(cursor, query))
    order = "DESC" if newest_first else "ASC"
    by = f"occurred_at {order}, position {order}" if _timed(query) else f"position {order}"
    cursor.execute(
        # `data` only where the changes are in it (a user's creation: `stored_changes`).
        f"SELECT {', '.join(COLUMNS)}, CASE WHEN changes IS NULL THEN data END AS data"
        f" FROM {TABLES.entries} WHERE {where} ORDER BY {by} LIMIT ?",
        (*params, limit),
    )
    return [entry(row) for row in cursor.fetchall()]


def stream(
    transaction: Callable[[], Any], query: AuditQuery, batch: int = 2000
) -> Iterator[dict[str, Any]]:
    """Every matching entry, fetched a batch at a time: memory stays flat."""
    after = query.after
    while True:
        with transaction() as cursor:
            entries = page(cursor, replace(query, after=after), batch)
        yield from entries
        if len(entries) < batch:
            return
        after = entries[-1]["position"]


def csv_chunks(transaction: Callable[[], Any], query: AuditQuery) -> Iterator[bytes]:
    """Every matching entry as CSV (header first, cells safe for a spreadsheet), in chunks
    of about 64 KiB: memory stays flat."""
    buffer = io.StringIO()
    writer = spreadsheet.Writer(buffer)
    writer.writerow(COLUMNS)
    for item in stream(transaction, query):
        writer.writerow(csv_row(item))
        if buffer.tell() > _CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def jsonl_chunks(transaction: Callable[[], Any], query: AuditQuery) -> Iterator[bytes]:
    """Every matching entry as JSON Lines (one `entry` object a line), in chunks."""
    chunk = bytearray()
    for item in stream(transaction, query):
        chunk += _encode(item) + b"\n"
        if len(chunk) > _CHUNK:
            yield bytes(chunk)
            chunk.clear()
    yield bytes(chunk)


_CHUNK = 64 * 1024


def deleted_not_erased(cursor: Cursor, org_id: str, before: str, limit: int) -> list[str]:
    """The ids of the organization's users deleted before `before` and not yet erased,
    oldest deletion first: those the retention policy erases (ledger.retention)."""
    cursor.execute(
        f"SELECT d.subject_id FROM {TABLES.entries} d WHERE d.org_id = ?"
        " AND d.action = 'user.deleted' AND d.occurred_at < ?"
        f" AND NOT EXISTS (SELECT 1 FROM {TABLES.entries} e"
        " WHERE e.subject_id = d.subject_id AND e.action = 'user.erased')"
        " ORDER BY d.position LIMIT ?",
        (org_id, before, limit),
    )
    return [str(row["subject_id"]) for row in cursor.fetchall()]


def subject_ids(cursor: Cursor, org_id: str | None, subject: str) -> Sequence[str]:
    """The ids of the subjects a name or id designates, oldest first."""
    where, params = _where(AuditQuery(org_id=org_id, subject=subject), cursor, "subject")
    cursor.execute(
        f"SELECT subject_id, MIN(position) AS first FROM {TABLES.entries} WHERE {where}"
        " GROUP BY subject_id ORDER BY first",
        params,
    )
    return [row["subject_id"] for row in cursor.fetchall()]


# Reports reviewers ask for (the others are filters: everything a token did is
# actor=<token id>; all deactivations in a period is action=user.deactivated with since/until).

REVOKED_TOKEN_USERS_COLUMNS = (
    "user_id",
    "user_name",
    "created_at",
    "token_id",
    "token_name",
    "revoked_at",
)


def revoked_token_users(cursor: Cursor, org_id: str | None) -> list[dict[str, Any]]:
    """Users created by a token that was later revoked, and neither deactivated nor deleted
    since the revocation: access that outlived the credential that granted it."""
    org_clause = "AND c.org_id = ?" if org_id is not None else ""
    cursor.execute(
        "SELECT c.subject_id AS user_id, c.subject_name AS user_name,"
        " c.occurred_at AS created_at, c.actor_id AS token_id, c.actor_name AS token_name,"
        " r.occurred_at AS revoked_at"
        f" FROM {TABLES.entries} c JOIN {TABLES.entries} r"
        " ON r.subject_id = c.actor_id AND r.action = 'token.revoked'"
        f" WHERE c.action = 'user.created' AND c.actor_kind = 'token' {org_clause}"
        f" AND NOT EXISTS (SELECT 1 FROM {TABLES.entries} d WHERE d.subject_id = c.subject_id"
        " AND d.action IN ('user.deactivated', 'user.deleted') AND d.position > r.position)"
        " ORDER BY c.position",
        (org_id,) if org_id is not None else (),
    )
    return [
        {column: row[column] for column in REVOKED_TOKEN_USERS_COLUMNS} for row in cursor.fetchall()
    ]
