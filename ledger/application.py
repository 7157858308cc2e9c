"""The `Ledger` application: the only way into the write side.

Each command loads aggregates, lets them decide, and saves every resulting event in one
atomic write. It returns what callers need (ids, versions, log positions) and raises domain
errors from `scimledger.ledger.errors`, never HTTP ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    PersistenceError,
    Recording,
    Transcoder,
)

from scimledger.ledger import append_only, availability, departures, members, metrics, retention
from scimledger.ledger.commands import (
    GroupUpdate,
    IssuedToken,
    Keep,
    NewGroup,
    NewUser,
    Principal,
    SingleSignOn,
    UserEdit,
    UserState,
    VersionCheck,
    Written,
    no_check,
)
from scimledger.ledger.context import Actor, CommandContext, RequestInfo, Role
from scimledger.ledger.credentials import (
    Credentials,
    LogReader,
    announce,
    announcement,
    changes_credentials,
)
from scimledger.ledger.database import DatabaseURL, setup_lock
from scimledger.ledger.errors import (
    ConcurrentModification,
    GroupNameTaken,
    GroupNotFound,
    InvalidSchema,
    InvalidSettings,
    InvalidToken,
    LedgerError,
    NotAnAdmin,
    OrganizationNotFound,
    SchemaInUse,
    SchemaNotFound,
    TokenNotFound,
    UserIsActive,
    UserNameTaken,
    UserNotFound,
    UserWasErased,
    ValueTaken,
)
from scimledger.ledger.group_commit import GroupCommit
from scimledger.ledger.groups import Group
from scimledger.ledger.keys import KeyStore, MasterKey, configured_master
from scimledger.ledger.members import Directory
from scimledger.ledger.names import NameIndex, NameKind, normalize_name
from scimledger.ledger.organizations import Organization, Settings, normalize_email, normalize_slug
from scimledger.ledger.recorders import DOMAIN_EVENTS, Inline
from scimledger.ledger.schemas import (
    BUILT_IN,
    Declared,
    Holders,
    fits,
    schema_of,
    unique_form,
    unique_kind,
)
from scimledger.ledger.sealing import SealingMapper
from scimledger.ledger.secrets import MAX_SECRET, Secrets
from scimledger.ledger.sessions import (
    LINK_LIFETIME,
    SESSION_LIFETIME,
    ConsoleSession,
    Presented,
    SignedIn,
    SignInLink,
    SignInMethod,
    SignInRefused,
)
from scimledger.ledger.tokens import (
    Token,
    format_token,
    hash_secret,
    issuer,
    new_secret,
    parse_token,
    refuse_unknown,
)
from scimledger.ledger.transcoding import LEDGER_TRANSCODINGS, LedgerTranscoder
from scimledger.ledger.turns import Turns
from scimledger.ledger.users import Attributes, User, erasure_reason, hash_password
from scimledger.ledger.webhooks import (
    Webhook,
    WebhookNotFound,
    check_url,
    new_signing_secret,
    secret_name,
)

OIDC_SECRET = "oidc_client_secret"  # noqa: S105 (its name in ledger.secrets, not a secret)

# A write that conflicts with a concurrent write to the same aggregate is retried this
# many times, re-running the caller's edit on the fresh state each time.
MAX_ATTEMPTS = 8

# A group is snapshotted right after a membership change of this many ids, besides every 10
# events: loading it then never decodes a big member list again.
SNAPSHOT_AFTER_MEMBERS = 100

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")

log = logging.getLogger(__name__)


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector (`project_aggregate`) without its check of each event against
    a runtime protocol, which cost more than applying the event (every event of the
    ledger's aggregates can mutate: they are the library's own aggregate events)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _key_reader(datastore: Any, database: DatabaseURL) -> Callable[[], Any]:
    """How the key store opens its own connection (tuples of rows, in autocommit)."""
    if database.kind == "sqlite":

        def connect_sqlite() -> Any:
            connection = datastore.pool.open_sqlite()
            connection.row_factory = None
            return connection

        return connect_sqlite
    return lambda: psycopg.connect(**database.connection_kwargs(), autocommit=True)


class Ledger(Application[UUID]):
    name = "Ledger"
    # Groups' events carry member ids; a snapshot every few events keeps a big group's load
    # short. Other aggregates are never snapshotted (see construct_repository).
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Group: 10}

    def __init__(self, database: DatabaseURL, master: MasterKey | None = None) -> None:
        """The ledger on `database`, its personal data's keys wrapped by `master` (by
        default the configured one: ledger.keys)."""
        self.database = database
        self._group_commit = GroupCommit(self._insert)
        with setup_lock(database):  # the library creates its tables and functions here
            super().__init__(env=database.eventsourcing_env())
            self.events_table: str = getattr(self.recorder, "events_table_name")  # noqa: B009
            datastore = getattr(self.recorder, "datastore")  # noqa: B009 (not on its interface)
            append_only.protect(datastore, database.kind, [self.events_table])
            self.keys = KeyStore(
                datastore,
                database.kind,
                master or configured_master(database),
                _key_reader(datastore, database),
            )
            self.keys.create_table()
            self.secrets = Secrets(datastore, database.kind, lambda: self.keys.master)
            self.secrets.create_table()
        mapper: Any = self.mapper
        mapper.keys = self.keys  # seals and unseals personal data (ledger.sealing)
        recorder: Any = self.recorder
        recorder.keys = self.keys  # writes and deletes data keys with the events
        # On PostgreSQL read through until a listener makes it live; on SQLite checked
        # against the log at each read (see ledger.credentials).
        self.credentials = Credentials(
            LogReader(datastore.pool.open_sqlite, self.events_table)
            if database.kind == "sqlite"
            else None
        )
        # On PostgreSQL: 503 at once while the database is out of reach (ledger.availability).
        gate = availability.install(datastore) if database.kind == "postgresql" else None
        self.gate = gate
        # Writers to one resource take turns, within this process and across processes.
        self.turns = Turns(database, gate)
        if gate is not None:
            self.turns.watch(datastore)  # its own appends, told from other processes'

    def construct_repository(self) -> Repository[UUID]:
        # Only groups have snapshots: loading anything else skips the snapshot lookup.
        self.group_repository = Repository(event_store=self.events, snapshot_store=self.snapshots)
        return Repository(event_store=self.events)

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=SealingMapper
        )

    def construct_transcoder(self) -> Transcoder:
        transcoder = LedgerTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        for transcoding in LEDGER_TRANSCODINGS:
            transcoder.register(transcoding)

    # Users

    def create_user(self, context: CommandContext, new: NewUser) -> Written:
        # Hashed before the user exists, so a slow hash does not split the create's
        # events in time.
        password_hash = (
            hash_password(new.password, os.urandom(16)) if new.password is not None else None
        )

        def attempt(first: bool) -> Written:
            user = User(
                org_id=context.org_id, attributes=new.attributes, active=new.active, context=context
            )
            if password_hash is not None:
                user.set_initial_password_hash(password_hash, context)
            index = self._claim_name(
                context.org_id, "userName", user.user_name, user.id, assume_new=first
            )
            unique = self._unique_users(context.org_id, {}, user.attributes)
            claimed = self._unique_changes(context.org_id, user.id, *unique, assume_new=first)
            return self._save(user, user, index, *claimed)

        return self._retried(attempt, "userName index kept changing")

    def update_user(self, context: CommandContext, user_id: UUID, edit: UserEdit) -> Written:
        def attempt(_first: bool) -> Written:
            user = self._get_user(context, user_id)
            replacement = edit(UserState(user.id, dict(user.attributes), user.active, user.version))
            new_name = str(replacement.attributes["userName"])
            changed: list[Aggregate] = [user]
            changed += self._rename(context.org_id, "userName", user.user_name, new_name, user.id)
            unique = self._unique_users(context.org_id, user.attributes, replacement.attributes)
            changed += self._unique_changes(context.org_id, user.id, *unique)
            was_active = user.active
            user.replace_attributes(replacement.attributes, context)
            if replacement.active is not None:
                user.set_active(replacement.active, context)
            if user.active != was_active:
                changed += self._admin_presence(context, user, present=user.active)
            if replacement.password is not None:
                user.set_password(replacement.password, os.urandom(16), context)
            return self._save(user, *changed)

        return self._retried(attempt, f"User {user_id} kept changing; try again", turn=user_id)

    def delete_user(
        self, context: CommandContext, user_id: UUID, check: VersionCheck = no_check
    ) -> Written:
        def attempt(_first: bool) -> Written:
            user = self._get_user(context, user_id)
            check(user.version)
            leaving = self._admin_presence(context, user, present=False) if user.active else []
            user.delete(context)
            index = self._release_name(context.org_id, "userName", user.user_name)
            unique = self._unique_users(context.org_id, user.attributes, {})
            released = self._unique_changes(context.org_id, user.id, *unique)
            return self._save(user, user, index, *leaving, *released)

        return self._retried(attempt, f"User {user_id} kept changing; try again", turn=user_id)

    def erase_user(
        self, context: CommandContext, user_id: UUID, reason: str, *, force: bool = False
    ) -> Written:
        """Erases the user's personal data: deletes them if they are not (an active user
        only with `force`), then records UserErased, whose transaction destroys their data
        key (ledger.keys): every event of theirs then reads `[erased]` where it held their
        data. Erasing an erased user changes nothing."""
        reason = erasure_reason(reason)

        def attempt(_first: bool) -> Written:
            user = self._get(User, user_id)
            if user is None or user.org_id != context.org_id:
                raise UserNotFound(user_id)
            if user.erased:
                return self._save(user)
            changed: list[Aggregate] = [user]
            if not user.deleted:
                if user.active and not force:
                    raise UserIsActive(user_id)
                if user.active:
                    changed += self._admin_presence(context, user, present=False)
                user.delete(context)
                changed.append(self._release_name(context.org_id, "userName", user.user_name))
                unique = self._unique_users(context.org_id, user.attributes, {})
                changed += self._unique_changes(context.org_id, user.id, *unique)
            user.erase(reason, context)
            return self._save(user, *changed)

        return self._retried(attempt, f"User {user_id} kept changing; try again", turn=user_id)

    def sweep_retention(self, user_id: UUID, now: datetime) -> bool:
        """Applies the retention policy to one deleted user now: erased if their
        organization keeps deleted users' data for less time than has passed since their
        deletion (ledger.retention). True if this erased them."""
        user = self._get(User, user_id)
        if user is None or not user.deleted or user.erased:
            return False
        organization = self._get(Organization, user.org_id)
        seconds = organization.settings.get("erase_deleted_after_seconds") if organization else None
        if seconds is None or now < user.modified_on + timedelta(seconds=seconds):
            return False
        context = CommandContext(user.org_id, retention.POLICY, RequestInfo.local())
        return self.erase_user(context, user_id, retention.reason(seconds)).position is not None

    def user_at(self, org_id: UUID | None, user_id: UUID, at: datetime) -> User | None:
        """The user as it was at `at`, rebuilt from its events; None if it did not exist
        then (not yet created, or already deleted) or belongs to another organization.
        An erased user raises UserWasErased, whatever the time: what they were is gone."""
        events = list(self.events.get(user_id))
        erased = next((e for e in events if isinstance(e, User.UserErased)), None)
        if erased is not None and (org_id is None or erased.context.org_id == org_id):
            raise UserWasErased(user_id, erased.timestamp)
        versions = [
            event.originator_version for event in events if getattr(event, "timestamp", at) <= at
        ]
        if not versions:
            return None
        try:
            user: Aggregate = self.repository.get(user_id, version=max(versions))
        except AggregateNotFoundError:
            return None
        if not isinstance(user, User) or user.deleted:
            return None
        return user if org_id is None or user.org_id == org_id else None

    def _admin_presence(
        self, context: CommandContext, user: User, *, present: bool
    ) -> list[Aggregate]:
        """The organization, if the user is one of its admins and has just left
        (deactivated, deleted) or returned (reactivated). The user is an admin's own only by
        userName: an admin is registered by email, and their user is the one whose userName
        is that email. Other values (secondary emails) any provisioning client can set on
        anyone, which would let it make an admin depart."""
        emails = {str(user.attributes.get("userName", "")).strip().lower()}
        # Most users are no admin: decided on the organization as authentication keeps it
        # (ledger.credentials: current but for changes made elsewhere in the last few
        # milliseconds); an admin's departure or return is recorded on a fresh read.
        known: Organization | None = self.credentials.get(
            context.org_id, lambda: self._get(Organization, context.org_id)
        )
        if known is None or not emails & set(known.admins):
            return []
        organization = self._get(Organization, context.org_id)
        if organization is None:
            return []
        if present:
            organization.user_returned(emails, context)
        else:
            organization.user_left(emails, context, datetime.now(UTC))
        return [organization] if organization.pending_events else []

    def _get_user(self, context: CommandContext, user_id: UUID) -> User:
        user = self._get(User, user_id)
        if user is None or user.org_id != context.org_id or user.deleted:
            raise UserNotFound(user_id)
        return user

    # Groups

    def create_group(self, context: CommandContext, new: NewGroup, directory: Directory) -> Written:
        """Creates a group; its members must be users of the organization (UnknownMembers)."""
        directory.catch_up()  # users created a moment ago, through any server, count
        with directory.read() as reader:
            joining = members.users(reader, context.org_id, new.members)

        def attempt(first: bool) -> Written:
            group = Group(
                org_id=context.org_id,
                display_name=new.display_name,
                external_id=new.external_id,
                context=context,
            )
            group.replace_extensions(new.extensions, context, at_creation=True)
            group.add_initial_members(list(joining), context)
            index = self._claim_name(
                context.org_id, "displayName", new.display_name, group.id, assume_new=first
            )
            unique = self._unique_groups(context.org_id, {}, new.extensions)
            claimed = self._unique_changes(context.org_id, group.id, *unique, assume_new=first)
            return self._save(group, group, index, *claimed)

        written = self._retried(attempt, "displayName index kept changing")
        if len(joining) >= SNAPSHOT_AFTER_MEMBERS:
            self._snapshot(written)
        return written

    def update_group(
        self,
        context: CommandContext,
        group_id: UUID,
        update: GroupUpdate,
        directory: Directory,
        check: VersionCheck = no_check,
    ) -> Written:
        """Applies `update` to the group's current state: who joins and who leaves is worked
        out against the read model (ledger.members), again if the group changed meanwhile."""

        moved = 0  # members who joined or left, in the attempt that was saved

        def attempt(_first: bool) -> Written:
            nonlocal moved
            group = self._get_group(context, group_id)
            check(group.version)
            directory.catch_up()  # the read model now holds the group at group.version
            with directory.read() as reader:
                change = members.plan(reader, context.org_id, group.id, update)
            name = update.display_name
            if isinstance(name, Keep):
                name = group.display_name
            changed: list[Aggregate] = [group]
            changed += self._rename(
                context.org_id, "displayName", group.display_name, name, group.id
            )
            group.rename(name, context)
            if not isinstance(update.external_id, Keep):
                group.set_external_id(update.external_id, context)
            if update.extensions is not None:
                extensions = update.extensions(dict(group.extensions))
                unique = self._unique_groups(context.org_id, group.extensions, extensions)
                changed += self._unique_changes(context.org_id, group.id, *unique)
                group.replace_extensions(extensions, context)
            group.remove_members(list(change.remove), context)
            group.add_members(list(change.add), context)
            moved = len(change.add) + len(change.remove)
            return self._save(group, *changed)

        written = self._retried(
            attempt, f"Group {group_id} kept changing; try again", turn=group_id
        )
        if moved >= SNAPSHOT_AFTER_MEMBERS:
            self._snapshot(written)
        return written

    def delete_group(
        self, context: CommandContext, group_id: UUID, check: VersionCheck = no_check
    ) -> Written:
        def attempt(_first: bool) -> Written:
            group = self._get_group(context, group_id)
            check(group.version)
            group.delete(context)
            index = self._release_name(context.org_id, "displayName", group.display_name)
            unique = self._unique_groups(context.org_id, group.extensions, {})
            released = self._unique_changes(context.org_id, group.id, *unique)
            return self._save(group, group, index, *released)

        return self._retried(attempt, f"Group {group_id} kept changing; try again", turn=group_id)

    def _snapshot(self, written: Written) -> None:
        """Snapshots a group just saved, so its next load skips the big event just recorded.

        Runs after the write has committed, so it must not fail the command: a snapshot of
        this version may already exist (the interval policy, or a concurrent request).
        """
        assert self.snapshots is not None  # snapshotting is on: see snapshotting_intervals
        assert isinstance(written.aggregate, Group)
        with contextlib.suppress(IntegrityError):
            self.snapshots.put([Group.Snapshot.take(written.aggregate)])

    def _get_group(self, context: CommandContext, group_id: UUID) -> Group:
        group = self._get(Group, group_id, self.group_repository)
        if group is None or group.org_id != context.org_id or group.deleted:
            raise GroupNotFound(group_id)
        return group

    # Unique names

    def _claim_name(
        self, org_id: UUID, kind: NameKind, name: str, owner_id: UUID, *, assume_new: bool = False
    ) -> NameIndex:
        """The name's index, claimed for `owner_id` (UserNameTaken/GroupNameTaken if someone
        else holds it). With `assume_new` it is not read: a name never used is claimed by
        its index's first event, and for a name that exists (taken or released) that event
        conflicts with the stored one, the save fails, and the caller's next attempt reads
        it. Creates mostly bring new names: one read less each."""
        index_id = self.name_index_id(org_id, kind, name)
        index = None if assume_new else self._get(NameIndex, index_id)
        if index is None:
            # A userName's index records no name: its id is a keyed hash of it, and the name
            # is the person's (sealed in their own events, erased with them).
            recorded = "" if kind == "userName" else normalize_name(name)
            return NameIndex.claimed(index_id, org_id, kind, recorded, owner_id)
        if index.owner_id is None:
            index.claim(owner_id)
        elif index.owner_id != owner_id:
            raise UserNameTaken(name) if kind == "userName" else GroupNameTaken(name)
        return index

    def _rename(
        self, org_id: UUID, kind: NameKind, old: str, new: str, owner_id: UUID
    ) -> list[NameIndex]:
        """The indexes a rename changes: `new` claimed, `old` released (none for a change of
        case only)."""
        if normalize_name(new) == normalize_name(old):
            return []
        return [
            self._claim_name(org_id, kind, new, owner_id),
            self._release_name(org_id, kind, old),
        ]

    def name_index_id(self, org_id: UUID, kind: NameKind, name: str) -> UUID:
        """A name's index: keyed for userNames (personal), plain for groups' names."""
        if kind == "userName":
            return NameIndex.keyed_id(org_id, kind, name, self.keys.index_key())
        return NameIndex.create_id(org_id, kind, name)

    def _release_name(self, org_id: UUID, kind: NameKind, name: str) -> NameIndex:
        index = self._get(NameIndex, self.name_index_id(org_id, kind, name))
        if index is None:  # cannot happen for a resource created through the ledger
            raise LedgerError(f"{kind} index missing for {name!r}")
        index.release()
        return index

    # Unique values of declared extensions (ledger.schemas: `uniqueness: server`)

    def _unique_users(
        self, org_id: UUID, before: Attributes, after: Attributes
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """The unique values a user held and holds (as the organization declares them)."""
        schemas = self.declared(org_id).user
        return schemas.unique_values(before), schemas.unique_values(after)

    def _unique_groups(
        self, org_id: UUID, before: Attributes, after: Attributes
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        schemas = self.declared(org_id).group
        return schemas.unique_values(before), schemas.unique_values(after)

    def _unique_changes(
        self,
        org_id: UUID,
        owner_id: UUID,
        before: set[tuple[str, str]],
        after: set[tuple[str, str]],
        *,
        assume_new: bool = False,
    ) -> list[NameIndex]:
        """The indexes of the unique values a resource takes (claimed: ValueTaken if another
        holds one) and leaves (released), saved with it: two resources taking one value at
        once conflict in the event store, as two userNames do."""
        changed = []
        for kind, form in sorted(after - before):
            index_id = self._value_index_id(org_id, kind, form)
            index = None if assume_new else self._get(NameIndex, index_id)
            if index is None:
                index = NameIndex.claimed(index_id, org_id, kind, "", owner_id)
            elif index.owner_id is None:
                index.claim(owner_id)
            elif index.owner_id != owner_id:
                raise ValueTaken(kind.rsplit("#", 1)[0])
            changed.append(index)
        for kind, form in sorted(before - after):
            held = self._get(NameIndex, self._value_index_id(org_id, kind, form))
            if held is not None and held.owner_id == owner_id:
                held.release()
                changed.append(held)
        return changed

    def _value_index_id(self, org_id: UUID, kind: str, form: str) -> UUID:
        """A unique value's index: keyed, as a userName's (the values may be personal), and
        of the value exactly as compared (unique_form)."""
        return NameIndex.keyed_id(org_id, kind, form, self.keys.index_key(), normalized=False)

    # Organizations and tokens

    def issue_token(
        self,
        *,
        org: str,
        name: str,
        expires_at: datetime | None,
        actor: Actor,
        request: RequestInfo,
        scopes: tuple[str, ...] = ("scim",),
        by: str | None = None,
    ) -> IssuedToken:
        """Issues a token for an organization, creating the organization if it is new.

        `by` names the organization admin the token is issued for (see add_admin)."""
        slug = normalize_slug(org)
        name = name.strip()
        if not name or len(name) > 200:
            raise LedgerError("a token needs a name of 1 to 200 characters")
        org_id = Organization.create_id(slug)
        context = CommandContext(org_id=org_id, actor=actor, request=request)
        admin = normalize_email(by) if by is not None else None

        def attempt(_first: bool) -> IssuedToken:
            organization = self._get(Organization, org_id)
            if organization is None:
                organization = Organization(slug=slug, context=context)
            if admin is not None and admin not in organization.admins:
                raise NotAnAdmin(
                    f"{admin} is not an admin of {slug}: add them first with"
                    f" `scimledger admins add {admin} --org {slug}`"
                )
            token, issued = self._new_token(context, slug, name, expires_at, scopes, admin=admin)
            self.save(organization, token)  # a new organization conflicts if created meanwhile
            return issued

        return self._retried(attempt, f"organization {slug!r} kept changing")

    def add_admin(
        self, org: str, email: str, actor: Actor, request: RequestInfo, role: Role = "admin"
    ) -> None:
        """Makes `email` an admin (or a reviewer) of the organization, creating the
        organization if new."""
        slug = normalize_slug(org)
        org_id = Organization.create_id(slug)
        context = CommandContext(org_id=org_id, actor=actor, request=request)
        organization = self._get(Organization, org_id)
        if organization is None:
            organization = Organization(slug=slug, context=context)
        organization.add_admin(email, context, role)
        self.save(organization)

    def remove_admin(self, org: str, email: str, actor: Actor, request: RequestInfo) -> None:
        organization = self._organization(org)
        context = CommandContext(organization.id, actor, request)
        organization.remove_admin(email, context, datetime.now(UTC))
        self.save(organization)

    def change_settings(
        self, org: str, settings: dict[str, Any], actor: Actor, request: RequestInfo
    ) -> Settings:
        """Changes an organization's settings (see organizations.DEFAULT_SETTINGS)."""
        organization = self._organization(org)
        organization.change_settings(settings, CommandContext(organization.id, actor, request))
        self.save(organization)
        return organization.settings.copy()

    # Extension schemas (ledger.schemas)

    def declare_schema(
        self,
        org: str,
        document: Any,
        actor: Actor,
        request: RequestInfo,
        holders: Holders,
        *,
        resource_type: str | None = None,
        required: bool = False,
    ) -> tuple[str, bool]:
        """Declares an extension schema for the organization's users or groups, or changes
        its declaration (InvalidSchema if it cannot be declared): its URN, and whether this
        changed anything. An attribute newly unique has the values resources hold now
        (`holders`: the read model's) claimed in its index, in the same transaction: refused
        if two resources share one."""

        def attempt(_first: bool) -> tuple[str, bool]:
            organization = self._organization(org)
            context = CommandContext(organization.id, actor, request)
            before = {urn: d.get("unique", {}) for urn, d in organization.extensions.items()}
            urn, changed = organization.declare_schema(
                document, context, resource_type=resource_type, required=required
            )
            claims = self._claim_held(organization, urn, before.get(urn, {}), holders)
            self.save(organization, *claims)
            return urn, changed

        return self._retried(attempt, f"{org} kept changing; try again")

    def _claim_held(
        self, organization: Organization, urn: str, before: dict[str, int], holders: Holders
    ) -> list[NameIndex]:
        """Claims, in the indexes of the extension's attributes newly unique, the values
        resources hold."""
        fresh = organization.new_uniqueness(urn, before)
        if not fresh:
            return []
        declaration = organization.extensions[urn]
        schema = schema_of(declaration["document"])
        claims: list[NameIndex] = []
        for name, generation in sorted(fresh.items()):
            attribute = schema.attribute(name)
            assert attribute is not None
            kind = unique_kind(urn, name, generation)
            owners: dict[str, str] = {}
            for owner, value in holders(organization.id, declaration["resource_type"], urn, name):
                if not fits(attribute, value):
                    continue  # recorded under an earlier declaration: hidden, not held
                form = unique_form(attribute, value)
                if owners.setdefault(form, owner) != owner:
                    raise InvalidSchema(
                        f"{urn}:{name} cannot be unique: {owners[form]} and {owner} share a value"
                    )
                index_id = self._value_index_id(organization.id, kind, form)
                claims.append(NameIndex.claimed(index_id, organization.id, kind, "", UUID(owner)))
        return claims

    def remove_schema(
        self,
        org: str,
        urn: str,
        values: Callable[[UUID, str], int],
        actor: Actor,
        request: RequestInfo,
        *,
        force: bool = False,
    ) -> str:
        """Removes a declared extension schema: refused (SchemaInUse) while `values(org_id,
        urn)` resources hold values of it, unless forced. The values stay in their events."""

        def attempt(_first: bool) -> str:
            organization = self._organization(org)
            declared = organization.declared_urn(urn)
            if declared is None:
                raise SchemaNotFound(urn)
            held = values(organization.id, declared)
            if held and not force:
                raise SchemaInUse(declared, held)
            context = CommandContext(organization.id, actor, request)
            removed = organization.remove_schema(urn, held, context)
            self.save(organization)
            return removed

        return self._retried(attempt, f"{org} kept changing; try again")

    def rotate_master(self, new: MasterKey) -> tuple[int, int]:
        """Makes `new` the master key (`keys rotate-master`): every data key wrapped and every
        organization's secret sealed again with it, in one transaction; the events are not
        touched. Returns how many keys and secrets."""
        datastore = getattr(self.recorder, "datastore")  # noqa: B009 (not on its interface)
        with datastore.transaction(commit=True) as cursor:
            keys = self.keys.rewrap(cursor, new)
            secrets = self.secrets.reseal(cursor, new)
        self.keys.master = new
        return keys, secrets

    def declared(self, org_id: UUID) -> Declared:
        """The organization's schemas, as authentication read the organization for the
        request (ledger.credentials: a change counts on every server within milliseconds;
        on SQLite at the next request's authentication)."""
        organization = self.credentials.get(
            org_id, lambda: self._get(Organization, org_id), recheck=False
        )
        return organization.declared() if isinstance(organization, Organization) else BUILT_IN

    def set_single_sign_on(
        self,
        org: str,
        *,
        issuer: str,
        client_id: str,
        client_secret: str,
        actor: Actor,
        request: RequestInfo,
        now: datetime,
    ) -> Settings:
        """The organization's OpenID Connect provider for the console: the secret is kept
        beside the events (ledger.secrets), the settings say when it was set."""
        if not 0 < len(client_secret) <= MAX_SECRET or not client_secret.isprintable():
            raise InvalidSettings(
                f"the client secret must be 1 to {MAX_SECRET} printable characters"
            )
        organization = self._organization(org)
        set_at = now.isoformat()
        context = CommandContext(org_id=organization.id, actor=actor, request=request)
        sso = {"oidc_issuer": issuer, "oidc_client_id": client_id}
        organization.change_settings({**sso, "oidc_client_secret_set_at": set_at}, context)
        # Checked: the secret first, then the event that makes it the current one.
        self.secrets.put(str(organization.id), OIDC_SECRET, set_at, client_secret)
        self.save(organization)
        self.secrets.keep_only(str(organization.id), OIDC_SECRET, set_at)
        return organization.settings.copy()

    # Webhook endpoints (ledger.webhooks)

    def add_webhook(
        self,
        org: str,
        url: str,
        *,
        types: Sequence[str],
        allow_insecure: bool,
        actor: Actor,
        request: RequestInfo,
        now: datetime,
    ) -> tuple[Webhook, str]:
        """A new endpoint of the organization, and its signing secret (shown once)."""
        organization = self._organization(org)
        checked = check_url(url, allow_insecure=allow_insecure)
        context = CommandContext(org_id=organization.id, actor=actor, request=request)
        set_at = now.isoformat()
        webhook = Webhook(
            org_id=organization.id,
            org_slug=organization.slug,
            url=checked,
            types=list(dict.fromkeys(types)),
            secret_set_at=set_at,
            context=context,
        )
        secret = new_signing_secret()
        # The secret first, then the event that makes it the endpoint's.
        self.secrets.put(str(organization.id), secret_name(webhook.id), set_at, secret)
        self.save(webhook)
        return webhook, secret

    def webhook(self, webhook_id: UUID, org_id: UUID | None = None) -> Webhook:
        """The endpoint (of organization `org_id`, if given); WebhookNotFound otherwise."""
        webhook = self._get(Webhook, webhook_id)
        if webhook is None or (org_id is not None and webhook.org_id != org_id):
            raise WebhookNotFound(f"no webhook {webhook_id}")
        return webhook

    def change_webhook(
        self,
        webhook_id: UUID,
        change: Literal["disable", "enable", "remove"],
        actor: Actor,
        request: RequestInfo,
        org_id: UUID | None = None,
    ) -> Webhook:
        webhook = self.webhook(webhook_id, org_id)
        context = CommandContext(org_id=webhook.org_id, actor=actor, request=request)
        if change == "disable":
            webhook.disable(context)
        elif change == "enable":
            webhook.enable(context)
        else:
            webhook.remove(context)
        self.save(webhook)
        if change == "remove":
            self.secrets.keep_only(str(webhook.org_id), secret_name(webhook.id))
        return webhook

    def rotate_webhook_secret(
        self,
        webhook_id: UUID,
        *,
        grace: timedelta,
        actor: Actor,
        request: RequestInfo,
        now: datetime,
        org_id: UUID | None = None,
    ) -> str:
        """A new signing secret (shown once); the previous one signs too for `grace`."""
        webhook = self.webhook(webhook_id, org_id)
        context = CommandContext(org_id=webhook.org_id, actor=actor, request=request)
        set_at = now.isoformat()
        previous = webhook.secret_set_at
        webhook.rotate_secret(set_at, now + grace, context)
        secret = new_signing_secret()
        name = secret_name(webhook.id)
        self.secrets.put(str(webhook.org_id), name, set_at, secret)
        self.save(webhook)
        self.secrets.keep_only(str(webhook.org_id), name, set_at, *([previous] if grace else []))
        return secret

    def replay_webhook(
        self,
        webhook_id: UUID,
        after_position: int,
        actor: Actor,
        request: RequestInfo,
        org_id: UUID | None = None,
    ) -> Webhook:
        """Has the endpoint's changes after `after_position` posted again (in order, from
        the deliverer's next look at it)."""
        webhook = self.webhook(webhook_id, org_id)
        context = CommandContext(org_id=webhook.org_id, actor=actor, request=request)
        webhook.replay(after_position, context)
        self.save(webhook)
        return webhook

    def webhook_signing_secrets(self, webhook: Webhook, now: datetime) -> list[str]:
        """The secrets that sign the endpoint's deliveries now (two during a rotation)."""
        name = secret_name(webhook.id)
        found = (
            self.secrets.get(str(webhook.org_id), name, at) for at in webhook.signing_secrets(now)
        )
        return [secret for secret in found if secret is not None]

    def mark_webhook_failing(self, webhook_id: UUID, reason: str) -> None:
        """The deliverer gave up on the endpoint (it is told again by `enable`)."""
        webhook = self.webhook(webhook_id)
        context = CommandContext(
            org_id=webhook.org_id,
            actor=Actor.operator("webhook deliverer"),
            request=RequestInfo.local(),
        )
        webhook.mark_failing(reason, context)
        self.save(webhook)

    def single_sign_on(self, org_id: UUID) -> SingleSignOn | None:
        """The organization's OpenID Connect provider, if it has one."""
        organization = self._get(Organization, org_id)
        if organization is None:
            return None
        settings = organization.settings
        issuer, client_id = settings["oidc_issuer"], settings["oidc_client_id"]
        set_at = settings["oidc_client_secret_set_at"]
        if not (issuer and client_id and set_at):
            return None
        secret = self.secrets.get(str(org_id), OIDC_SECRET, set_at)
        return None if secret is None else SingleSignOn(issuer, client_id, secret)

    def settings(self, org: str) -> Settings:
        return self._organization(org).settings.copy()

    def sweep_departed(self, token_id: UUID, now: datetime) -> bool:
        """Applies the departure policy to one token now; True if it was revoked."""
        token = self._get(Token, token_id)
        if token is None or token.revoked:
            return False
        try:
            self._enforce_departure_policy(token, now)
        except InvalidToken:
            return True
        return False

    def _enforce_departure_policy(self, token: Token, now: datetime) -> None:
        """Revokes, and records it, a token the departure policy revokes now
        (ledger.departures); InvalidToken then."""
        if token.issued_by_admin is None:
            return
        if not departures.revocation_due(token, self._get(Organization, token.org_id), now):
            return
        token.revoke(CommandContext(token.org_id, departures.POLICY, RequestInfo.local()))
        with contextlib.suppress(IntegrityError):  # revoked concurrently: just as good
            self.save(token)
        raise InvalidToken("token revoked: its issuer left the organization")

    def organization_slug(self, org_id: UUID) -> str:
        organization = self._get(Organization, org_id)
        if organization is None:
            raise OrganizationNotFound(f"no organization {org_id}")
        return organization.slug

    def token(self, token_id: UUID) -> Token | None:
        return self._get(Token, token_id)

    def admins(self, org: str) -> list[str]:
        return list(self._organization(org).admins)

    def reviewers(self, org: str) -> list[str]:
        return list(self._organization(org).reviewers)

    def organization(self, org: str) -> Organization:
        """The organization as it stands (its admins, reviewers, departures, settings), to
        read."""
        return self._organization(org)

    def _organization(self, org: str) -> Organization:
        organization = self._get(Organization, Organization.create_id(normalize_slug(org)))
        if organization is None:
            raise OrganizationNotFound(f"no organization {org!r}")
        return organization

    def revoke_token(self, token_id: UUID, actor: Actor, request: RequestInfo) -> Token:
        token = self._get(Token, token_id)
        if token is None:
            raise TokenNotFound(token_id)
        token.revoke(CommandContext(org_id=token.org_id, actor=actor, request=request))
        self.save(token)
        return token

    def rotate_token(
        self,
        token_id: UUID,
        *,
        grace: timedelta,
        actor: Actor,
        request: RequestInfo,
        now: datetime,
        by: str | None = None,
    ) -> IssuedToken:
        """Issues a successor with the same organization, name, scopes and expiry (and, with
        `by`, for another admin); the old token keeps working for `grace`, then is
        rejected. Both are saved together."""
        old = self._get(Token, token_id)
        if old is None:
            raise TokenNotFound(token_id)
        admin = old.issued_by_admin
        if by is not None:
            admin = normalize_email(by)
            if admin not in self._organization(old.org_slug).admins:
                raise NotAnAdmin(f"{admin} is not an admin of {old.org_slug}")
        context = CommandContext(org_id=old.org_id, actor=actor, request=request)
        successor, issued = self._new_token(
            context, old.org_slug, old.name, old.expires_at, old.scopes, admin=admin
        )
        old.rotate(successor.id, now + grace, context)
        self.save(old, successor)
        return issued

    def _new_token(
        self,
        context: CommandContext,
        slug: str,
        name: str,
        expires_at: datetime | None,
        scopes: Sequence[str],
        *,
        admin: str | None,
    ) -> tuple[Token, IssuedToken]:
        """A new token of the context's organization, and what its issuer is shown once."""
        secret = new_secret()
        token = Token(
            org_id=context.org_id,
            org_slug=slug,
            name=name,
            secret_hash=hash_secret(secret),
            expires_at=expires_at,
            scopes=list(scopes),
            context=context,
            issued_by_admin=admin,
        )
        return token, IssuedToken(token.id, format_token(token.id, secret), slug, name, expires_at)

    def authenticate(self, presented: str, now: datetime) -> Principal:
        """The principal a presented token speaks for; InvalidToken if it speaks for none."""
        parsed = parse_token(presented)
        token: Token | None = self.credentials.get(
            parsed.token_id, lambda: self._get(Token, parsed.token_id)
        )
        if not isinstance(token, Token):  # none, or another aggregate the cache holds (an
            refuse_unknown(parsed.secret)  # organization's id is derived from its name)
        token.check(parsed.secret, now)
        if token.issued_by_admin is not None:
            org_id = token.org_id
            organization = self.credentials.get(org_id, lambda: self._get(Organization, org_id))
            if departures.revocation_due(token, organization, now):
                # Decided on what authentication read (perhaps cached): revoked on fresh state.
                fresh = self._get(Token, token.id)
                assert fresh is not None
                self._enforce_departure_policy(fresh, now)
        issued_by = issuer(token.issued_by_admin, token.issued_by)
        actor = Actor(kind="token", id=str(token.id), name=token.name, issued_by=issued_by)
        return Principal(org_id=token.org_id, actor=actor, scopes=tuple(token.scopes))

    # Console sign-in (ledger.sessions)

    def issue_sign_in_link(
        self, org: str, email: str, actor: Actor, now: datetime
    ) -> tuple[Presented, datetime]:
        """A one-time sign-in link for an admin or reviewer: what its bearer presents, and
        until when it works."""
        organization = self._organization(org)
        person = normalize_email(email)
        if organization.role_of(person) is None:
            raise NotAnAdmin(
                f"{person} is not an admin or reviewer of {organization.slug}: add them first"
                f" with `scimledger admins add {person} --org {organization.slug}`"
            )
        secret = new_secret()
        link = SignInLink(
            org_id=organization.id,
            email=person,
            secret_hash=hash_secret(secret),
            expires_at=now + LINK_LIFETIME,
            context=CommandContext(organization.id, actor, RequestInfo.local()),
        )
        self.save(link)
        return Presented(link.id, secret), link.expires_at

    def sign_in_link(self, presented: Presented, now: datetime) -> SignInLink:
        """The link presented, if it would let its bearer in now; SignInRefused if not."""
        link = self._get(SignInLink, presented.id)
        if link is None:
            raise SignInRefused("unknown sign-in link")
        link.check(presented.secret, now)
        return link

    def sign_in_with_link(
        self, presented: Presented, request: RequestInfo, now: datetime
    ) -> Presented:
        """Uses a sign-in link: the session it opens, as the browser will present it."""
        link = self.sign_in_link(presented, now)
        try:
            return self._start_session(
                link.org_id, email=link.email, method="link", request=request, now=now, link=link
            )
        except IntegrityError as exc:  # the link was used meanwhile
            raise SignInRefused("sign-in link already used") from exc

    def sign_in_with_sso(
        self, org_id: UUID, email: str, request: RequestInfo, now: datetime
    ) -> Presented:
        email = normalize_email(email)
        return self._start_session(org_id, email=email, method="sso", request=request, now=now)

    def _start_session(
        self,
        org_id: UUID,
        *,
        email: str,
        method: SignInMethod,
        request: RequestInfo,
        now: datetime,
        link: SignInLink | None = None,
    ) -> Presented:
        organization = self._get(Organization, org_id)
        role = organization.role_of(email) if organization is not None else None
        if role is None:
            raise SignInRefused(f"{email} is not an admin or reviewer of the organization")
        session_id, secret = uuid4(), new_secret()
        context = CommandContext(org_id, Actor.person(session_id, email, role), request)
        session = ConsoleSession(
            id=session_id,
            org_id=org_id,
            email=email,
            role=role,
            method=method,
            secret_hash=hash_secret(secret),
            expires_at=now + SESSION_LIFETIME,
            context=context,
        )
        if link is not None:
            link.use(session_id, context)
        self.save(*([link] if link is not None else []), session)
        return Presented(session_id, secret)

    def signed_in(self, presented: Presented, now: datetime) -> SignedIn:
        """Who a console session speaks for now; SignInRefused once it no longer holds. The
        session is read afresh (its end counts at once, on every server); the organization
        as authentication reads it (ledger.credentials)."""
        session = self._get(ConsoleSession, presented.id)
        if session is None:
            raise SignInRefused("unknown session")
        org_id = session.org_id
        organization = self.credentials.get(org_id, lambda: self._get(Organization, org_id))
        role = session.role_now(presented.secret, organization, now)
        assert organization is not None  # role_now refuses without one
        return SignedIn(org_id, organization.slug, session.id, session.email, role)

    def end_session(self, session_id: UUID, context: CommandContext) -> None:
        session = self._get(ConsoleSession, session_id)
        if session is not None:
            session.end(context)
            self.save(session)

    def organization_id(self, org: str) -> UUID | None:
        org_id = Organization.create_id(normalize_slug(org))
        return org_id if self._get(Organization, org_id) is not None else None

    # Plumbing

    def close(self) -> None:
        self.turns.close()
        self.credentials.close()
        self.keys.close()
        super().close()

    def _retried(
        self, attempt: Callable[[bool], R], conflict: str, *, turn: UUID | None = None
    ) -> R:
        """Runs `attempt` (load, decide, save; told whether it is the first) until its save
        meets no concurrent write: each retry decides again on fresh state. With `turn`, the
        attempts run in that resource's turn (ledger.turns), so writers in this process do
        not race each other; a conflict then means another process wrote it."""
        with self.turns.turn(turn) if turn is not None else contextlib.nullcontext():
            for number in range(MAX_ATTEMPTS):
                try:
                    return attempt(number == 0)
                except IntegrityError:
                    metrics.CONFLICTS.inc()
                    if turn is not None:
                        self.turns.contended()
                if number + 1 < MAX_ATTEMPTS:
                    metrics.RETRIES.inc()
        raise ConcurrentModification(conflict)

    def _get(
        self, cls: type[A], aggregate_id: UUID, repository: Repository[UUID] | None = None
    ) -> A | None:
        try:
            aggregate: Aggregate = (repository or self.repository).get(
                aggregate_id, projector_func=_project
            )
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def project_inline(self, inline: Inline) -> None:
        """Writes `inline` (the SCIM read model) in every save's own transaction
        (ledger.recorders)."""
        recorder: Any = self.recorder
        recorder.inline = inline

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save, but for how aggregates' events are collected: its check of
        each object against a runtime protocol (`isinstance(obj, DomainEventProtocol)`)
        took ~20 us per aggregate, more than building its events."""
        if kwargs or not all(isinstance(obj, Aggregate) for obj in objs):
            return super().save(*objs, **kwargs)
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in objs:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        return recordings

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Every save goes through group commit (ledger.group_commit)."""
        if processing_event.tracking is not None or processing_event.saved_kwargs:
            recordings = super()._record(processing_event)
        else:
            recordings = self._group_commit.record(processing_event)
        metrics.SAVES.inc()
        metrics.EVENTS.inc(len(recordings))
        return recordings

    def _insert(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """Records one transaction's events, handing them to the inline projection."""
        events = processing_event.events
        return self.events.put(events, **{DOMAIN_EVENTS: events})

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        """After every save: tokens and organizations changed are forgotten here and
        announced to the other processes (ledger.credentials)."""
        changed = {
            recording.domain_event.originator_id
            for recording in recordings
            if changes_credentials(recording.domain_event)
        }
        if not changed:
            return
        self.credentials.forget(changed)
        if self.database.kind != "postgresql":
            return
        datastore: Any = getattr(self.recorder, "datastore")  # noqa: B009
        try:
            announce(datastore, announcement(changed))
        except PersistenceError:
            # The write is committed: it must not be reported failed. Servers whose
            # listener lost the database read through until it is back (ledger.credentials).
            log.warning("could not announce changed tokens or organizations", exc_info=True)

    def _save(self, subject: Aggregate, *aggregates: Any) -> Written:
        position = None  # nothing changed: nothing recorded
        if any(a.pending_events for a in aggregates):
            recordings: list[Recording[UUID]] = self.save(*aggregates)
            position = max(r.notification.id for r in recordings)
        return Written(id=subject.id, version=subject.version, position=position, aggregate=subject)
