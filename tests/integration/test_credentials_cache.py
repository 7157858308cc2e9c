"""The credentials cache with its listener, on PostgreSQL (the only database it is live on).

While a `LogListener` is connected, `Ledger.authenticate` reads a token (and its
organization) once and keeps it; a change recorded by this ledger is forgotten at once, a
change recorded by another process (another `Ledger` on the same database) as soon as its
announcement arrives; a lost listener connection makes the cache read through again.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import pytest
from eventsourcing.domain import Aggregate

from scimledger.ledger import tokens
from scimledger.ledger.application import Ledger
from scimledger.ledger.commands import IssuedToken
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.ledger.credentials import changes_credentials
from scimledger.ledger.database import DatabaseURL
from scimledger.ledger.errors import InvalidToken
from scimledger.ledger.listener import LogListener
from scimledger.ledger.organizations import Organization
from scimledger.ledger.tokens import Token, format_token, parse_token

OPERATOR = Actor(kind="operator", id="tests", name="tester")
POLICY = Actor(kind="operator", id="departed-issuer policy", name="scimledger")
DAY = timedelta(days=1)
LISTENER_NAME = LogListener.APPLICATION_NAME

T = TypeVar("T", bound=Aggregate)  # the classes Ledger._get loads


def now() -> datetime:
    return datetime.now(UTC)


def eventually(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Waits until `check()` holds; returns the seconds it took, fails after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.005)
    return time.monotonic() - started


def refused(ledger: Ledger, token: str, at: datetime | None = None) -> str | None:
    """Why `ledger` refuses `token` now (or `at`), or None if it accepts it."""
    try:
        ledger.authenticate(token, at or now())
    except InvalidToken as exc:
        return str(exc)
    return None


class Loads:
    """Counts the aggregates a ledger reads from its event store, by id."""

    def __init__(self, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: list[tuple[str, UUID]] = []
        original = ledger._get

        def counting(cls: type[T], aggregate_id: UUID) -> T | None:
            self.reads.append((cls.__name__, aggregate_id))
            return original(cls, aggregate_id)

        monkeypatch.setattr(ledger, "_get", counting)

    def of(self, kind: type[Any], aggregate_id: UUID) -> int:
        return self.reads.count((kind.__name__, aggregate_id))

    def reset(self) -> None:
        self.reads.clear()


class Calls:
    """Counts the calls of one method of an object (and still calls it)."""

    def __init__(self, target: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = getattr(target, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(target, name, counted)


@pytest.fixture
def database(postgres: DatabaseURL) -> DatabaseURL:
    return postgres


@pytest.fixture
def server(database: DatabaseURL) -> Iterator[Ledger]:
    """The ledger of the process whose cache the tests watch."""
    ledger = Ledger(database)
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture
def other(database: DatabaseURL) -> Iterator[Ledger]:
    """Another process's ledger on the same database (`scimledger tokens revoke`, say)."""
    ledger = Ledger(DatabaseURL.parse(database.url))
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture
def org() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


@contextmanager
def listening(ledger: Ledger, database: DatabaseURL | None = None) -> Iterator[LogListener]:
    """A started listener for `ledger`, connected and its cache live; stopped after."""
    listener = LogListener(ledger)
    if database is not None:
        listener.database = database  # its LISTEN connection goes there
    assert listener.enabled
    listener.start()
    try:
        assert listener.connected.wait(5), "the listener did not connect"
        # `connected` is set just before the cache starts: wait for the cache itself.
        eventually(lambda: ledger.credentials.live, 5, "the cache live")
        yield listener
    finally:
        listener.stop()
        thread = listener._thread
        assert thread is None or not thread.is_alive(), "the listener did not stop"
    assert not ledger.credentials.live


def issue(ledger: Ledger, org: str, name: str = "Okta", by: str | None = None) -> IssuedToken:
    return ledger.issue_token(
        org=org,
        name=name,
        expires_at=None,
        actor=OPERATOR,
        request=RequestInfo("issue"),
        by=by,
    )


def revoke(ledger: Ledger, token_id: UUID) -> None:
    ledger.revoke_token(token_id, OPERATOR, RequestInfo("revoke"))


def listener_pids(database: DatabaseURL) -> list[int]:
    """The backends of this database that are log listeners' connections (they name
    themselves in application_name)."""
    with psycopg.connect(**database.connection_kwargs(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s AND pid <> pg_backend_pid() ORDER BY pid",
            (LISTENER_NAME,),
        ).fetchall()
    return [int(row[0]) for row in rows]


# a. One read while live; a read per request otherwise


def test_live_a_token_is_read_once_for_three_authentications(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, org)
    with listening(server):
        loads = Loads(server, monkeypatch)
        principals = [server.authenticate(issued.token, now()) for _ in range(3)]
        assert loads.of(Token, issued.id) == 1
        assert loads.reads == [("Token", issued.id)]  # not issued for an admin: no org read
        org_id = Organization.create_id(org)
        for principal in principals:
            assert principal.org_id == org_id
            assert principal.actor == Actor(
                kind="token", id=str(issued.id), name="Okta", issued_by="operator:tester"
            )
            assert principal.scopes == ("scim",)


def test_without_a_listener_every_authentication_reads_the_token(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, org)
    assert server.credentials.live is False
    loads = Loads(server, monkeypatch)
    for _ in range(3):
        assert server.authenticate(issued.token, now()).actor.name == "Okta"
    assert loads.reads == [("Token", issued.id)] * 3


def test_once_the_listener_stops_every_authentication_reads_again(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, org)
    loads = Loads(server, monkeypatch)
    with listening(server):
        server.authenticate(issued.token, now())
        server.authenticate(issued.token, now())
        assert loads.of(Token, issued.id) == 1
    assert server.credentials.live is False
    server.authenticate(issued.token, now())
    server.authenticate(issued.token, now())
    assert loads.of(Token, issued.id) == 3


def test_live_a_token_issued_for_an_admin_reads_its_organization_once(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add_admin(org, "alice@example.com", OPERATOR, RequestInfo("a"))
    issued = issue(server, org, by="alice@example.com")
    org_id = Organization.create_id(org)
    with listening(server):
        loads = Loads(server, monkeypatch)
        for _ in range(3):
            principal = server.authenticate(issued.token, now())
            assert principal.actor.issued_by == "admin:alice@example.com"
        assert loads.reads == [("Token", issued.id), ("Organization", org_id)]


def test_two_tokens_are_kept_apart(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = issue(server, org, "First"), issue(server, org, "Second")
    with listening(server):
        loads = Loads(server, monkeypatch)
        for _ in range(2):
            assert server.authenticate(first.token, now()).actor.name == "First"
            assert server.authenticate(second.token, now()).actor.name == "Second"
        assert loads.reads == [("Token", first.id), ("Token", second.id)]
        # A cached token still checks the secret presented.
        wrong = first.token[: -len("secret")] + "secret"
        assert refused(server, wrong) == "wrong secret"
        assert loads.of(Token, first.id) == 1


# b. Revoked by another process: refused here within the time a notification takes


def test_a_token_revoked_by_another_process_is_refused_within_two_seconds(
    server: Ledger, other: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, org)
    with listening(server) as listener:
        loads = Loads(server, monkeypatch)
        assert refused(server, issued.token) is None
        assert refused(server, issued.token) is None
        assert loads.of(Token, issued.id) == 1  # held in the cache
        stops = Calls(server.credentials, "stop", monkeypatch)
        starts = Calls(server.credentials, "start", monkeypatch)

        revoke(other, issued.id)
        revoked_at = time.monotonic()
        took = eventually(
            lambda: refused(server, issued.token) is not None, 2, "the revocation seen here"
        )
        assert took < 2
        assert time.monotonic() - revoked_at < 2
        assert refused(server, issued.token) == "token revoked"
        # The announcement did it, not a lost connection that made the cache read through.
        assert (stops.count, starts.count) == (0, 0)
        assert server.credentials.live is True
        assert listener.connected.is_set()
        # The revoked token was read again, and is now kept as it is: revoked.
        # (Read twice if a read overlapped the announcement: that one was not kept.)
        reads = loads.of(Token, issued.id)
        assert reads in (2, 3)
        assert refused(server, issued.token) == "token revoked"
        assert loads.of(Token, issued.id) == reads


def test_a_revocation_elsewhere_forgets_only_that_token(
    server: Ledger, other: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked, kept = issue(server, org, "Revoked"), issue(server, org, "Kept")
    with listening(server):
        loads = Loads(server, monkeypatch)
        for issued in (revoked, kept):
            server.authenticate(issued.token, now())
        revoke(other, revoked.id)
        eventually(lambda: refused(server, revoked.token) is not None, 2, "revocation seen")
        assert refused(server, kept.token) is None
        assert loads.of(Token, kept.id) == 1


def test_an_organization_changed_elsewhere_is_read_again(
    server: Ledger, other: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add_admin(org, "alice@example.com", OPERATOR, RequestInfo("a"))
    issued = issue(server, org, by="alice@example.com")
    org_id = Organization.create_id(org)
    with listening(server):
        loads = Loads(server, monkeypatch)
        server.authenticate(issued.token, now())
        server.authenticate(issued.token, now())
        assert loads.of(Organization, org_id) == 1
        other.add_admin(org, "bob@example.com", OPERATOR, RequestInfo("b"))

        def organization_read_again() -> bool:
            server.authenticate(issued.token, now())
            return loads.of(Organization, org_id) >= 2

        eventually(organization_read_again, 2, "the organization forgotten")
        assert loads.of(Token, issued.id) == 1  # the token did not change


# c. Revoked through this ledger: refused at once


def test_a_token_revoked_through_the_same_ledger_is_refused_at_once(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, org)
    with listening(server):
        loads = Loads(server, monkeypatch)
        assert refused(server, issued.token) is None
        assert refused(server, issued.token) is None
        assert loads.of(Token, issued.id) == 1
        # Announcements are recorded, not applied: only the ledger's own forgetting counts.
        payloads: list[str] = []
        monkeypatch.setattr(server.credentials, "announced", payloads.append)
        revoke(server, issued.id)
        loads.reset()  # the revocation read the token itself
        assert refused(server, issued.token) == "token revoked"
        assert loads.reads == [("Token", issued.id)]
        # Its own announcement reaches the listener too, naming the token alone.
        eventually(lambda: payloads == [str(issued.id)], 2, "the announcement")


def test_a_token_rotated_through_the_same_ledger_without_grace_is_refused_at_once(
    server: Ledger, org: str
) -> None:
    issued = issue(server, org)
    with listening(server):
        at = now()
        assert refused(server, issued.token, at) is None
        successor = server.rotate_token(
            issued.id, grace=timedelta(0), actor=OPERATOR, request=RequestInfo("r"), now=at
        )
        assert refused(server, issued.token, at) == "token rotated; its grace period is over"
        assert refused(server, successor.token, at) is None


# d. A lost listener connection: read through until it is back


def test_a_terminated_listener_connection_stops_the_cache_until_it_reconnects(
    server: Ledger,
    other: Ledger,
    database: DatabaseURL,
    org: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued, spare = issue(server, org, "Okta"), issue(server, org, "Spare")
    with listening(server) as listener:
        loads = Loads(server, monkeypatch)
        assert refused(server, issued.token) is None
        assert refused(server, issued.token) is None
        assert loads.of(Token, issued.id) == 1  # cached
        [pid] = listener_pids(database)
        with psycopg.connect(**database.connection_kwargs(), autocommit=True) as admin:
            row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert row == (True,)
        # Revoked at once, while nobody listens here: its announcement is lost.
        revoke(other, issued.id)
        took = eventually(lambda: not server.credentials.live, 2, "the cache stopped")
        assert took < 2
        # Nothing kept survived: the first answer after the loss is read, and right.
        assert refused(server, issued.token) == "token revoked"
        # Not live: every authentication reads (unless it reconnected meanwhile, after 1 s).
        before = loads.of(Token, spare.id)
        was_live = server.credentials.live
        assert refused(server, spare.token) is None
        assert refused(server, spare.token) is None
        if not (was_live or server.credentials.live):
            assert loads.of(Token, spare.id) - before == 2
        # It reconnects (a second later) and the cache is live again, on a new connection.
        eventually(listener.connected.is_set, 8, "the listener reconnected")
        eventually(lambda: server.credentials.live, 8, "the cache live again")
        eventually(
            lambda: len(listener_pids(database)) == 1 and listener_pids(database) != [pid],
            5,
            "one new LISTEN connection",
        )
        loads.reset()
        assert refused(server, spare.token) is None
        assert refused(server, spare.token) is None
        assert refused(server, spare.token) is None
        assert loads.reads == [("Token", spare.id)]
        # And it hears announcements again.
        revoke(other, spare.id)
        eventually(lambda: refused(server, spare.token) is not None, 2, "revocation seen")
        assert refused(server, spare.token) == "token revoked"


def test_the_cache_stops_as_soon_as_the_listener_connection_is_terminated(
    server: Ledger, database: DatabaseURL, org: str
) -> None:
    issue(server, org)
    with listening(server) as listener:
        [pid] = listener_pids(database)
        stopped = threading.Event()
        original = server.credentials.stop

        def stop() -> None:
            original()
            stopped.set()

        # Wrapped on this ledger's own cache, for the rest of the test (mypy refuses
        # assigning to a method).
        server.credentials.stop = stop  # type: ignore[method-assign]
        with psycopg.connect(**database.connection_kwargs(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            started = time.monotonic()
        assert stopped.wait(2), "the cache did not stop"
        assert time.monotonic() - started < 1
        assert not server.credentials.live
        eventually(lambda: server.credentials.live, 8, "live again")
        assert listener.connected.is_set()


# e. The departure policy, decided on a cached organization


def revoke_after(ledger: Ledger, org: str, grace: timedelta) -> None:
    ledger.change_settings(
        org,
        {"departed_policy": "revoke-after", "departed_grace_seconds": int(grace.total_seconds())},
        OPERATOR,
        RequestInfo("s"),
    )


def alices_token(ledger: Ledger, org: str) -> IssuedToken:
    ledger.add_admin(org, "alice@example.com", OPERATOR, RequestInfo("a"))
    revoke_after(ledger, org, DAY)
    return issue(ledger, org, by="alice@example.com")


def assert_revoked_by_the_policy(ledger: Ledger, token_id: UUID) -> None:
    token = ledger.token(token_id)
    assert token is not None
    assert token.revoked
    events = list(ledger.events.get(token_id))
    assert [type(e).__qualname__ for e in events] == ["Token.TokenIssued", "Token.TokenRevoked"]
    assert all(changes_credentials(e) for e in events)
    revoked = events[-1]
    assert isinstance(revoked, Token.TokenRevoked)
    assert revoked.context.actor == POLICY


def test_a_departed_admins_token_is_refused_once_the_grace_passes_with_the_cache_live(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = alices_token(server, org)
    org_id = Organization.create_id(org)
    with listening(server):
        loads = Loads(server, monkeypatch)
        later = now() + 2 * DAY
        assert refused(server, issued.token, later) is None  # alice stays: no grace runs
        assert refused(server, issued.token, later) is None
        assert loads.reads == [("Token", issued.id), ("Organization", org_id)]  # cached
        server.remove_admin(org, "alice@example.com", OPERATOR, RequestInfo("r"))
        left = now()
        loads.reset()
        # Within the grace period: accepted, on the organization read again.
        assert refused(server, issued.token, left + DAY - timedelta(minutes=1)) is None
        assert loads.reads == [("Organization", org_id)]
        # Once it has passed: refused, and revoked on the record.
        assert (
            refused(server, issued.token, left + DAY + timedelta(minutes=1))
            == "token revoked: its issuer left the organization"
        )
        assert_revoked_by_the_policy(server, issued.id)
        assert refused(server, issued.token, left) == "token revoked"
        assert server.credentials.live is True
    organization_events = list(server.events.get(org_id))
    assert [type(e).__qualname__ for e in organization_events] == [
        "Organization.OrganizationCreated",
        "Organization.AdminAdded",
        "Organization.SettingsChanged",
        "Organization.AdminRemoved",
    ]
    assert all(changes_credentials(e) for e in organization_events)


def test_a_departure_recorded_by_another_process_is_applied_here(
    server: Ledger, other: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = alices_token(server, org)
    org_id = Organization.create_id(org)
    with listening(server):
        loads = Loads(server, monkeypatch)
        much_later = now() + 30 * DAY
        assert refused(server, issued.token, much_later) is None
        assert refused(server, issued.token, much_later) is None
        assert loads.reads == [("Token", issued.id), ("Organization", org_id)]  # cached
        other.remove_admin(org, "alice@example.com", OPERATOR, RequestInfo("r"))
        took = eventually(
            lambda: refused(server, issued.token, much_later) is not None,
            2,
            "the departure seen here",
        )
        assert took < 2
        assert_revoked_by_the_policy(other, issued.id)
        assert refused(server, issued.token, much_later) == "token revoked"
        assert server.credentials.live is True


# A LISTEN connection that goes silent (no error, no notifications; eventsourcing #305)


class Blackhole:
    """A TCP proxy to PostgreSQL that, once `silence()`d, keeps its connections open but
    forwards nothing more: a connection gone silent, as a dropped NAT entry leaves one."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.server.getsockname()[1]
        self.silent = threading.Event()
        self.sockets: list[socket.socket] = [self.server]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if not self.silent.is_set():
                    sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            end.close()

    def silence(self) -> None:
        self.silent.set()

    def close(self) -> None:
        self.closed.set()
        for end in self.sockets:
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


def test_a_revocation_elsewhere_is_seen_through_the_proxy_while_it_forwards(
    server: Ledger, other: Ledger, database: DatabaseURL, org: str
) -> None:
    """The control for the next test: the proxy itself loses nothing."""
    issued = issue(server, org)
    proxy = Blackhole((database.host, database.port))
    try:
        with listening(server, dataclasses.replace(database, port=proxy.port)):
            assert refused(server, issued.token) is None
            revoke(other, issued.id)
            eventually(lambda: refused(server, issued.token) is not None, 2, "revocation seen")
            assert refused(server, issued.token) == "token revoked"
            assert server.credentials.live is True
    finally:
        proxy.close()


def test_a_revocation_elsewhere_is_seen_even_if_the_listen_connection_went_silent(
    server: Ledger, other: Ledger, database: DatabaseURL, org: str
) -> None:
    issued = issue(server, org)
    proxy = Blackhole((database.host, database.port))
    try:
        with listening(server, dataclasses.replace(database, port=proxy.port)):
            assert refused(server, issued.token) is None  # cached
            proxy.silence()
            revoke(other, issued.id)
            eventually(lambda: refused(server, issued.token) is not None, 5, "revocation seen")
            assert refused(server, issued.token) == "token revoked"
    finally:
        proxy.close()


def test_without_a_listener_a_revocation_elsewhere_is_refused_at_once(database_url: str) -> None:
    """PostgreSQL without a listener (before it connects): every authentication reads the
    token. SQLite has none: its cache reads the log's new events at each authentication.
    Either way another process's revocation holds on the very next request."""
    server, other = Ledger(DatabaseURL.parse(database_url)), Ledger(DatabaseURL.parse(database_url))
    try:
        issued = issue(server, "acme")
        assert refused(server, issued.token) is None
        assert server.credentials.live is (server.database.kind == "sqlite")
        revoke(other, issued.id)
        assert refused(server, issued.token) == "token revoked"
    finally:
        server.close()
        other.close()


# f. Unknown token ids: kept absent briefly, and refused after a wrong secret's work


def test_live_an_unknown_token_is_read_once_and_costs_a_wrong_secrets_work(
    server: Ledger, org: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = issue(server, org)
    unknown = format_token(uuid.uuid4(), "x" * 43)
    wrong = issued.token[: -len("secret")] + "secret"
    with listening(server):
        server.authenticate(issued.token, now())
        loads = Loads(server, monkeypatch)
        hashes = Calls(tokens, "hash_secret", monkeypatch)
        assert [refused(server, unknown) for _ in range(3)] == ["unknown token"] * 3
        assert loads.reads == [("Token", parse_token(unknown).token_id)]
        assert hashes.count == 3
        assert [refused(server, wrong) for _ in range(3)] == ["wrong secret"] * 3
        assert hashes.count == 6
        fresh = issue(server, org, "Issued since")  # announced: works at once
        assert server.authenticate(fresh.token, now()).actor.name == "Issued since"
