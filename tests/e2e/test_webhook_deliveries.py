"""Webhook deliveries (projections.deliveries) to real HTTP receivers: in order, signed (as
the standardwebhooks library verifies), retried, given up on, resumed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from standardwebhooks.webhooks import Webhook as Verifier

from scimledger.http.feed import webhook_body
from scimledger.http.services import Services
from scimledger.ledger.context import Actor, RequestInfo
from scimledger.projections import audit, deliveries
from scimledger.projections.deliveries import Deliverer, Retry, allowed_address
from scimledger.projections.rebuild import rebuild
from scimledger.projections.tokens import list_webhooks
from tests.e2e.conftest import call, cli_in_process, issue_token, running_server, start_server
from tests.receiver import Receiver, receiving
from tests.scim import PATCH_OP, Client

OPERATOR = Actor(kind="operator", id="tests", name="tester")
FAST = Retry(base=0.05, cap=0.2, give_up_after=timedelta(minutes=10))


@pytest.fixture
def following(services: Services) -> Iterator[None]:
    """The audit trail and the tokens read model kept caught up, as a server's followers do."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.05):
            services.audit.catch_up()
            services.tokens.catch_up()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


@pytest.fixture
def deliver(services: Services, following: None) -> Iterator[Callable[..., Deliverer]]:
    started: list[Deliverer] = []

    def start(**options: Any) -> Deliverer:
        options = {"allow_private": True, "retry": FAST, "timeout": 2.0, **options}
        deliverer = Deliverer(services.ledger, webhook_body("http://scim.test/scim/v2"), **options)
        deliverer.start()
        started.append(deliverer)
        return deliverer

    yield start
    for deliverer in started:
        deliverer.stop()


def add_endpoint(services: Services, url: str, types: tuple[str, ...] = ()) -> tuple[UUID, str]:
    webhook, secret = services.ledger.add_webhook(
        "acme",
        url,
        types=types,
        allow_insecure=True,
        actor=OPERATOR,
        request=RequestInfo(request_id="t"),
        now=datetime.now(UTC),
    )
    return webhook.id, secret


def create(client: Client, user_name: str) -> str:
    answer = client.post("/scim/v2/Users", json={"userName": user_name})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def deactivate(client: Client, user_id: str) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    assert client.patch(f"/scim/v2/Users/{user_id}", json=body).status_code == 200


def attempted(services: Services, webhook_id: UUID, count: int) -> list[dict[str, Any]]:
    """The endpoint's `count` first attempts, newest first, once there are that many."""
    deadline = time.monotonic() + 20
    while len(found := deliveries.attempts(services.sql, str(webhook_id))) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.02)
    return found[-count:]


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every post received, each verified with the standardwebhooks library."""
    verifier = Verifier(secret)
    events = []
    for post in receiver.received:
        headers = {name.lower(): value for name, value in post.headers.items()}
        events.append(verifier.verify(post.body, headers))
    return events


def test_changes_arrive_in_log_order_signed_each_once(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    before = create(client, "before@example.com")  # before the endpoint: not sent
    with receiving() as receiver:
        webhook_id, secret = add_endpoint(services, receiver.url)
        deliver()
        first = create(client, "first@example.com")
        second = create(client, "second@example.com")
        deactivate(client, first)
        receiver.wait_for(3)
        time.sleep(0.2)  # nothing more comes
        events = verified(receiver, secret)
    assert [(e["type"], e["subject"]["id"]) for e in events] == [
        ("user.created", first),
        ("user.created", second),
        ("user.deactivated", first),
    ]
    assert before not in {e["subject"]["id"] for e in events}
    assert events[2]["data"]["active"] is False
    posts = receiver.received
    assert [post.headers["webhook-id"] for post in posts] == [e["id"] for e in events]
    assert {post.headers["Content-Type"] for post in posts} == {"application/json"}
    assert {post.path for post in posts} == {"/hooks/scim"}
    assert str(webhook_id) not in str([post.headers for post in posts])


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_failing_receiver_is_retried_in_order_until_it_answers(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving(script=[500, 503, "redirect"]) as receiver:
        webhook_id, secret = add_endpoint(services, receiver.url)
        deliver()
        first = create(client, "one@example.com")
        second = create(client, "two@example.com")
        receiver.wait_for(5)
        time.sleep(0.2)
        events = verified(receiver, secret)
    # Three failed attempts of the first change (a redirect is not followed), then each once.
    assert [e["subject"]["id"] for e in events] == [first, first, first, first, second]
    tried = deliveries.attempts(services.sql, str(webhook_id))
    assert [(a["event_id"], a["attempt"], a["status"]) for a in reversed(tried)] == [
        (events[0]["id"], 1, 500),
        (events[0]["id"], 2, 503),
        (events[0]["id"], 3, 307),
        (events[0]["id"], 4, 200),
        (events[4]["id"], 1, 200),
    ]


def test_only_the_newest_attempts_are_kept_and_none_once_removed(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving(script=[500, 500, 500]) as receiver:
        webhook_id, _ = add_endpoint(services, receiver.url)
        deliver(keep_attempts=3)
        create(client, "one@example.com")
        create(client, "two@example.com")
        receiver.wait_for(5)
        attempted(services, webhook_id, 3)
        time.sleep(0.2)
        events = receiver.events()
    tried = deliveries.attempts(services.sql, str(webhook_id))
    assert [(a["event_id"], a["attempt"], a["status"]) for a in reversed(tried)] == [
        (events[0]["id"], 3, 500),
        (events[0]["id"], 4, 200),
        (events[4]["id"], 1, 200),
    ]
    services.ledger.change_webhook(webhook_id, "remove", OPERATOR, RequestInfo("t"))
    deadline = time.monotonic() + 10  # the deliverer looks at the endpoints every second
    while deliveries.attempts(services.sql, str(webhook_id)):
        assert time.monotonic() < deadline, "a removed endpoint's attempts are kept"
        time.sleep(0.05)


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_hostile_status_line_is_an_error_shown_escaped_and_the_change_is_retried(
    client: Client, services: Services, deliver: Callable[..., Deliverer], database_url: str
) -> None:
    with receiving(script=["hostile"]) as receiver:
        webhook_id, secret = add_endpoint(services, receiver.url)
        deliver()
        user_id = create(client, "one@example.com")
        receiver.wait_for(2)
        [failed, done] = reversed(attempted(services, webhook_id, 2))
        events = verified(receiver, secret)
    assert [event["subject"]["id"] for event in events] == [user_id, user_id]
    assert (failed["status"], done["status"]) == (None, 200)
    assert deliveries.progress(services.sql, str(webhook_id)) == deliveries.Progress(
        events[-1]["id"], 0, None, None
    )
    assert failed["error"].startswith("BadStatusLine: ")
    shown = cli_in_process("webhooks", "deliveries", str(webhook_id), database=database_url)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "BadStatusLine: HTTP/1.1 2\\x1b[2J<script>x</script>00 OK" in shown.stdout


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_where_a_retried_endpoint_stands_is_shown(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving(otherwise=500) as receiver:
        webhook_id, _ = add_endpoint(services, receiver.url)
        before = deliveries.progress(services.sql, str(webhook_id))
        deliver(retry=Retry(base=60, cap=60, give_up_after=timedelta(days=3)))
        create(client, "one@example.com")
        [failed] = attempted(services, webhook_id, 1)
    assert before == deliveries.Progress(None, 0, None, None)
    now = deliveries.progress(services.sql, str(webhook_id))
    assert (now.failures, now.failing_since) == (1, failed["attempted_at"])
    assert now.done_through is not None  # where it was added: nothing due before
    assert now.next_attempt_at is not None
    pause = datetime.fromisoformat(now.next_attempt_at) - datetime.fromisoformat(
        failed["attempted_at"]
    )
    assert timedelta(seconds=30) <= pause <= timedelta(seconds=60)  # half to all, jittered


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_receiver_that_hangs_is_given_up_on_after_the_timeout_and_retried(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving(script=["hang"]) as receiver:
        webhook_id, _ = add_endpoint(services, receiver.url)
        deliver(timeout=0.5)
        create(client, "slow@example.com")
        receiver.wait_for(2)
        [late, first] = attempted(services, webhook_id, 2)
    assert first["status"] is None
    assert "timed out" in first["error"]
    assert 400 <= first["milliseconds"] < 2000
    assert late["status"] == 200


def test_an_endpoint_failing_past_the_retry_period_is_recorded_failing_and_resumes_when_enabled(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving(otherwise=500) as receiver:
        webhook_id, _ = add_endpoint(services, receiver.url)
        deliver(retry=Retry(base=0.02, cap=0.05, give_up_after=timedelta(seconds=0.3)))
        user = create(client, "gone@example.com")
        deadline = time.monotonic() + 20
        while services.ledger.webhook(webhook_id).failing is False:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        tries = len(receiver.received)
        time.sleep(0.3)
        assert len(receiver.received) == tries  # no more posts
        services.tokens.catch_up()
        with services.sql.read() as cursor:
            [view] = list_webhooks(cursor, "acme")
        assert view.status == "failing"
        assert view.reason is not None
        assert "HTTP 500" in view.reason
        receiver.otherwise = 200
        services.ledger.change_webhook(webhook_id, "enable", OPERATOR, RequestInfo("t"))
        receiver.wait_for(tries + 1)
    assert receiver.received[-1].event["subject"]["id"] == user


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_disabled_endpoint_gets_nothing_until_enabled_then_everything_missed(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving() as receiver:
        webhook_id, _ = add_endpoint(services, receiver.url)
        services.ledger.change_webhook(webhook_id, "disable", OPERATOR, RequestInfo("t"))
        deliver()
        missed = create(client, "missed@example.com")
        time.sleep(1.5)  # the deliverer looks at the endpoints every second
        assert receiver.received == []
        services.ledger.change_webhook(webhook_id, "enable", OPERATOR, RequestInfo("t"))
        receiver.wait_for(1)
    assert receiver.received[0].event["subject"]["id"] == missed


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_types_select_what_is_posted(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving() as receiver:
        add_endpoint(services, receiver.url, types=("user.deactivated",))
        deliver()
        kept = create(client, "kept@example.com")
        gone = create(client, "gone@example.com")
        deactivate(client, gone)
        receiver.wait_for(1)
        time.sleep(0.2)
    assert [(e["type"], e["subject"]["id"]) for e in receiver.events()] == [
        ("user.deactivated", gone)
    ]
    assert kept != gone


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_private_addresses_are_refused_unless_allowed(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving() as receiver:
        webhook_id, _ = add_endpoint(services, receiver.url)
        deliver(allow_private=False)
        create(client, "private@example.com")
        [attempt] = attempted(services, webhook_id, 1)
        assert receiver.received == []
    assert attempt["status"] is None
    assert attempt["error"] == (
        "refused: 127.0.0.1 resolves to a private or local address (127.0.0.1)"
    )


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_rebuild_of_the_audit_trail_meanwhile_sends_nothing_twice(
    client: Client, services: Services, deliver: Callable[..., Deliverer]
) -> None:
    with receiving() as receiver:
        add_endpoint(services, receiver.url)
        deliver()
        before = create(client, "before@example.com")
        receiver.wait_for(1)
        rebuild(services.ledger, audit.NAME)
        after = create(client, "after@example.com")
        receiver.wait_for(2)
        time.sleep(0.3)
    assert [e["subject"]["id"] for e in receiver.events()] == [before, after]


@pytest.mark.sqlite_only  # the database's part is tested on both elsewhere in this module
def test_a_replay_posts_the_changes_after_the_cursor_again_in_order_and_the_cli_shows_it(
    client: Client, services: Services, deliver: Callable[..., Deliverer], database_url: str
) -> None:
    with receiving() as receiver:
        webhook_id, _ = add_endpoint(services, receiver.url)
        deliver()
        users = [create(client, f"r{n}@example.com") for n in range(3)]
        first, *_ = receiver.wait_for(3)
        replayed = cli_in_process(
            "webhooks", "replay", str(webhook_id), "--from", first.event["id"],
            database=database_url,
        )  # fmt: skip
        assert replayed.returncode == 0, replayed.stderr
        assert f"gets the changes after {first.event['id']} again" in replayed.stderr
        receiver.wait_for(5)
        time.sleep(0.3)
    posted = [e["subject"]["id"] for e in receiver.events()]
    assert posted == [*users, *users[1:]]
    shown = cli_in_process(
        "webhooks", "deliveries", str(webhook_id), "--format", "csv", "--limit", "2",
        database=database_url,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "attempted_at,event_id,attempt,status,milliseconds,error"
    assert len(lines) == 3
    assert all(",1,200," in line for line in lines[1:])


@pytest.mark.sqlite_only
@pytest.mark.usefixtures("token")  # organization acme
def test_a_replay_needs_a_cursor_and_a_known_endpoint(
    services: Services, database_url: str
) -> None:
    webhook_id, _ = add_endpoint(services, "https://hooks.example.com/x")
    bad = cli_in_process(
        "webhooks", "replay", str(webhook_id), "--from", "=1+1", database=database_url
    )
    assert bad.returncode == 2
    assert "--from takes a cursor such as evt_42 (an event's id), not '=1+1'" in bad.stderr
    missing = "00000000-0000-4000-8000-000000000000"
    unknown = cli_in_process("webhooks", "deliveries", missing, database=database_url)
    assert (unknown.returncode, unknown.stderr) == (1, f"scimledger: error: no webhook {missing}\n")
    limit = cli_in_process(
        "webhooks", "deliveries", str(webhook_id), "--limit", "0", database=database_url
    )
    assert limit.returncode == 2
    assert "a number from 1 to 10000, not '0'" in limit.stderr


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # the cloud's metadata service
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        ("2606:4700::1111", True),
    ],
)
def test_only_global_addresses_are_allowed_by_default(address: str, allowed: bool) -> None:
    assert allowed_address(address, allow_private=False) is allowed
    assert allowed_address(address, allow_private=True) is True


def test_the_retry_pause_doubles_with_jitter_up_to_its_cap() -> None:
    retry = Retry()
    assert [retry.pause(n, lambda: 1.0) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert [retry.pause(n, lambda: 0.0) for n in (1, 2, 3)] == [2.5, 5.0, 10.0]
    assert retry.pause(11, lambda: 1.0) == 3600.0
    assert retry.pause(10_000, lambda: 1.0) == 3600.0
    assert retry.give_up_after == timedelta(days=3)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_deliverer_killed_mid_delivery_loses_nothing_and_resends_at_most_one(
    database_url: str,
) -> None:
    issued = issue_token(database_url)
    with receiving() as receiver:
        receiver.delay = 0.05
        added = cli_in_process(
            "webhooks", "add", "--org", "acme", "--url", receiver.url, "--allow-insecure-url",
            database=database_url,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        first = start_server(database_url, "--webhook-allow-private")
        try:
            created = [
                call(first, "POST", "/Users", issued["token"], {"userName": f"u{n}@example.com"})
                for n in range(COUNT)
            ]
            assert {reply.status for reply in created} == {201}
            receiver.wait_for(5)
            first.process.kill()
            first.process.wait(timeout=10)
        finally:
            first.log.close()
        with running_server(database_url, "--webhook-allow-private"):
            deadline = time.monotonic() + 60
            while len({e["id"] for e in receiver.events()}) < COUNT:
                assert time.monotonic() < deadline, len(receiver.events())
                time.sleep(0.05)
            time.sleep(0.3)
            ids = [e["id"] for e in receiver.events()]
    positions = [int(i.removeprefix("evt_")) for i in ids]
    distinct = sorted(set(positions))
    assert len(distinct) == COUNT
    assert [e["data"]["userName"] for e in receiver.events()][-1] == f"u{COUNT - 1}@example.com"
    # In order; at most the change in flight when it was killed came twice.
    assert len(positions) - COUNT <= 1
    assert positions == sorted(positions)


COUNT = 12
