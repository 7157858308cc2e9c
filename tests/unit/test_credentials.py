"""The credentials cache on its own: when it keeps what it loaded and what forgets it.

`Credentials` is read-through until started (a listener announces every change) and after
it is stopped; live, it keeps what it loaded until an invalidation names it, or names
everything, and never keeps a load that an invalidation overlapped.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest

from scimledger.ledger import credentials
from scimledger.ledger.credentials import (
    CHANNEL,
    KINDS,
    Credentials,
    announcement,
    changes_credentials,
)


class Loader:
    """A `load` function for one aggregate id: counts its calls, returns `value`; the
    first call runs `during` before returning, as a concurrent invalidation would."""

    def __init__(self, value: Any, during: Callable[[], None] | None = None) -> None:
        self.value = value
        self.calls = 0
        self.during = during

    def __call__(self) -> Any:
        self.calls += 1
        if self.during is not None and self.calls == 1:
            self.during()
        return self.value


def live_cache() -> Credentials:
    cache = Credentials()
    cache.start()
    return cache


def is_live(cache: Credentials) -> bool:
    return cache.live  # read afresh (not narrowed by an earlier assert)


def ids(n: int) -> list[UUID]:
    return [uuid.uuid4() for _ in range(n)]


# Read-through while not live


def test_a_new_cache_is_not_live_and_reads_through_every_time() -> None:
    cache = Credentials()
    assert cache.live is False
    aggregate_id = uuid.uuid4()
    value = object()
    load = Loader(value)
    for _ in range(3):
        assert cache.get(aggregate_id, load) is value
    assert load.calls == 3


def test_start_makes_it_live_and_stop_reads_through_again() -> None:
    cache = Credentials()
    cache.start()
    assert cache.live is True
    aggregate_id = uuid.uuid4()
    load = Loader("token")
    assert cache.get(aggregate_id, load) == "token"
    assert cache.get(aggregate_id, load) == "token"
    assert load.calls == 1
    cache.stop()
    assert is_live(cache) is False
    assert cache.get(aggregate_id, load) == "token"
    assert cache.get(aggregate_id, load) == "token"
    assert load.calls == 3


def test_stop_forgets_what_was_kept_so_a_restart_loads_again() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    load = Loader("token")
    cache.get(aggregate_id, load)
    cache.stop()
    cache.start()
    assert cache.get(aggregate_id, load) == "token"
    assert load.calls == 2
    assert cache.get(aggregate_id, load) == "token"
    assert load.calls == 2


def test_start_forgets_what_was_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    load = Loader("token")
    cache.get(aggregate_id, load)
    cache.start()  # a reconnected listener: what came meanwhile went unannounced
    cache.get(aggregate_id, load)
    assert load.calls == 2


def test_a_load_that_began_before_start_is_not_kept() -> None:
    cache = Credentials()
    aggregate_id = uuid.uuid4()
    load = Loader("token", during=cache.start)
    assert cache.get(aggregate_id, load) == "token"
    assert cache.live is True
    assert cache.get(aggregate_id, load) == "token"
    assert load.calls == 2  # the first load was not kept: it began read-through
    assert cache.get(aggregate_id, load) == "token"
    assert load.calls == 2


# Live: kept until forgotten


def test_live_a_second_get_does_not_load() -> None:
    cache = live_cache()
    first, second = ids(2)
    load_first, load_second = Loader("first"), Loader("second")
    assert cache.get(first, load_first) == "first"
    assert cache.get(first, load_first) == "first"
    assert cache.get(second, load_second) == "second"
    assert cache.get(second, load_second) == "second"
    assert cache.get(first, load_first) == "first"
    assert (load_first.calls, load_second.calls) == (1, 1)


def test_the_kept_object_is_the_one_loaded() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    value = object()
    assert cache.get(aggregate_id, Loader(value)) is value
    assert cache.get(aggregate_id, Loader(object())) is value


def test_an_absent_id_is_kept_absent_until_an_announcement_names_it() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    missing = Loader(None)
    assert cache.get(aggregate_id, missing) is None
    assert cache.get(aggregate_id, missing) is None
    assert missing.calls == 1
    cache.forget([aggregate_id])  # issued since: its TokenIssued is announced
    found = Loader("created since")
    assert cache.get(aggregate_id, found) == "created since"
    assert cache.get(aggregate_id, found) == "created since"
    assert found.calls == 1


def test_an_absent_id_is_loaded_again_after_absent_for(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(credentials, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    missing = Loader(None)
    cache.get(aggregate_id, missing)
    clock[0] += credentials.ABSENT_FOR - 0.1
    cache.heard()
    cache.get(aggregate_id, missing)
    assert missing.calls == 1
    clock[0] += 0.2
    cache.heard()
    cache.get(aggregate_id, missing)
    assert missing.calls == 2


def test_a_flood_of_absent_ids_never_evicts_what_was_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(credentials, "MAX_ENTRIES", 10)
    cache = live_cache()
    kept_id, value = uuid.uuid4(), object()
    cache.get(kept_id, Loader(value))
    flood = ids(25)
    for absent_id in flood:
        cache.get(absent_id, Loader(None))
    assert cache.get(kept_id, Loader(object())) is value
    again = Loader(None)
    cache.get(flood[0], again)  # the absent table was cleared when full
    assert again.calls == 1


def test_absent_ids_are_forgotten_by_forget_all_and_stop() -> None:
    cache = live_cache()
    absent_id = uuid.uuid4()
    cache.get(absent_id, Loader(None))
    cache.forget_all()
    found = Loader("issued")
    assert cache.get(absent_id, found) == "issued"
    assert found.calls == 1
    other = uuid.uuid4()
    cache.get(other, Loader(None))
    cache.stop()
    cache.start()
    assert cache.get(other, Loader("issued")) == "issued"


def test_an_absent_load_overlapped_by_an_invalidation_is_not_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    racing = Loader(None, during=lambda: cache.forget([aggregate_id]))
    cache.get(aggregate_id, racing)
    found = Loader("issued meanwhile")
    assert cache.get(aggregate_id, found) == "issued meanwhile"


def test_falsy_values_other_than_none_are_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    load = Loader(0)
    assert cache.get(aggregate_id, load) == 0
    assert cache.get(aggregate_id, load) == 0
    assert load.calls == 1


def test_forget_makes_the_next_get_reload_those_ids_only() -> None:
    cache = live_cache()
    first, second, third = ids(3)
    loads = {first: Loader("1"), second: Loader("2"), third: Loader("3")}
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    cache.forget([first, third])
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    assert [loads[i].calls for i in (first, second, third)] == [2, 1, 2]


def test_forget_of_unknown_ids_or_none_changes_nothing_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    load = Loader("token")
    cache.get(aggregate_id, load)
    cache.forget([uuid.uuid4()])
    cache.forget([])
    assert cache.get(aggregate_id, load) == "token"
    assert load.calls == 1
    assert cache.live is True


def test_forget_accepts_any_iterable() -> None:
    cache = live_cache()
    first, second = ids(2)
    loads = {first: Loader("1"), second: Loader("2")}
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    cache.forget(i for i in (first,))
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    assert (loads[first].calls, loads[second].calls) == (2, 1)


def test_forget_all() -> None:
    cache = live_cache()
    loads = {aggregate_id: Loader(str(aggregate_id)) for aggregate_id in ids(3)}
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    cache.forget_all()
    assert cache.live is True
    for aggregate_id, load in loads.items():
        assert cache.get(aggregate_id, load) == str(aggregate_id)
    assert [load.calls for load in loads.values()] == [2, 2, 2]
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    assert [load.calls for load in loads.values()] == [2, 2, 2]


# Announcements (notification payloads)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not-a-uuid",
        "12345678-1234-1234-1234-1234567890ab,garbage",
        ",",
        "12345678-1234-1234-1234-1234567890ab,",
    ],
)
def test_an_announcement_that_names_no_valid_ids_forgets_everything(payload: str) -> None:
    cache = live_cache()
    loads = {aggregate_id: Loader("x") for aggregate_id in ids(3)}
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    cache.announced(payload)
    assert cache.live is True
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    assert [load.calls for load in loads.values()] == [2, 2, 2]


def test_an_announcement_of_ids_forgets_exactly_those() -> None:
    cache = live_cache()
    first, second, third = ids(3)
    loads = {first: Loader("1"), second: Loader("2"), third: Loader("3")}
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    cache.announced(f"{first},{third}")
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    assert [loads[i].calls for i in (first, second, third)] == [2, 1, 2]


def test_an_announcement_of_one_id_in_hex_form_forgets_it() -> None:
    cache = live_cache()
    first, second = ids(2)
    loads = {first: Loader("1"), second: Loader("2")}
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    cache.announced(first.hex)  # UUID() accepts the 32-digit form too
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    assert (loads[first].calls, loads[second].calls) == (2, 1)


def test_an_announcement_round_trips() -> None:
    cache = live_cache()
    named = ids(3)
    others = ids(2)
    loads = {aggregate_id: Loader("x") for aggregate_id in named + others}
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    payload = announcement(named)
    assert payload == ",".join(str(i) for i in named)
    cache.announced(payload)
    for aggregate_id, load in loads.items():
        cache.get(aggregate_id, load)
    assert [loads[i].calls for i in named] == [2, 2, 2]
    assert [loads[i].calls for i in others] == [1, 1]


def test_announcement_of_a_set_round_trips_to_the_same_ids() -> None:
    named = set(ids(5))
    payload = announcement(named)
    assert {UUID(part) for part in payload.split(",")} == named
    assert len(payload) == 5 * 36 + 4


def test_announcement_is_empty_when_too_long_and_that_forgets_everything() -> None:
    # 36 characters and a comma each: 189 ids make 6,992 characters, 190 make 7,029.
    assert len(announcement(ids(189))) == 6_992
    assert announcement(ids(190)) == ""
    assert announcement([]) == ""
    cache = live_cache()
    kept = uuid.uuid4()
    load = Loader("x")
    cache.get(kept, load)
    cache.announced(announcement(ids(190)))
    cache.get(kept, load)
    assert load.calls == 2


def test_an_announcement_fits_in_a_postgresql_notification() -> None:
    longest = announcement(ids(189))
    assert longest != ""
    assert len(longest.encode()) < 8_000


def test_announced_while_not_live_keeps_it_read_through() -> None:
    cache = Credentials()
    cache.announced("")
    cache.announced(str(uuid.uuid4()))
    assert cache.live is False
    aggregate_id = uuid.uuid4()
    load = Loader("x")
    cache.get(aggregate_id, load)
    cache.get(aggregate_id, load)
    assert load.calls == 2


# A load overlapped by an invalidation is not kept


def test_a_load_during_which_its_id_is_forgotten_is_not_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    racing = Loader("stale", during=lambda: cache.forget([aggregate_id]))
    assert cache.get(aggregate_id, racing) == "stale"  # returned, but not kept
    fresh = Loader("fresh")
    assert cache.get(aggregate_id, fresh) == "fresh"
    assert cache.get(aggregate_id, fresh) == "fresh"
    assert fresh.calls == 1


def test_a_load_during_which_another_id_is_forgotten_is_not_kept_either() -> None:
    cache = live_cache()
    aggregate_id, other = ids(2)
    racing = Loader("old", during=lambda: cache.forget([other]))
    cache.get(aggregate_id, racing)
    load = Loader("new")
    assert cache.get(aggregate_id, load) == "new"
    assert load.calls == 1


@pytest.mark.parametrize("payload", ["", "not-a-uuid", "ID"])
def test_a_load_during_which_a_change_is_announced_is_not_kept(payload: str) -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    announced = str(aggregate_id) if payload == "ID" else payload
    racing = Loader("stale", during=lambda: cache.announced(announced))
    assert cache.get(aggregate_id, racing) == "stale"
    load = Loader("fresh")
    assert cache.get(aggregate_id, load) == "fresh"
    assert cache.get(aggregate_id, load) == "fresh"
    assert load.calls == 1


def test_a_load_during_which_everything_is_forgotten_is_not_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    cache.get(aggregate_id, Loader("stale", during=cache.forget_all))
    load = Loader("fresh")
    cache.get(aggregate_id, load)
    assert load.calls == 1


def test_a_load_during_which_the_cache_stops_is_not_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    cache.get(aggregate_id, Loader("stale", during=cache.stop))
    assert cache.live is False
    cache.start()
    load = Loader("fresh")
    cache.get(aggregate_id, load)
    cache.get(aggregate_id, load)
    assert load.calls == 1


def test_a_load_during_which_the_cache_stops_and_starts_again_is_not_kept() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()

    def reconnect() -> None:
        cache.stop()
        cache.start()

    cache.get(aggregate_id, Loader("stale", during=reconnect))
    assert cache.live is True
    load = Loader("fresh")
    cache.get(aggregate_id, load)
    assert load.calls == 1


def test_a_load_raising_keeps_nothing_and_propagates() -> None:
    cache = live_cache()
    aggregate_id = uuid.uuid4()

    def failing() -> Any:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        cache.get(aggregate_id, failing)
    load = Loader("x")
    cache.get(aggregate_id, load)
    cache.get(aggregate_id, load)
    assert load.calls == 1


def test_an_invalidation_from_another_thread_during_a_load_is_honoured() -> None:
    """The load runs outside the lock: another thread's announcement gets in meanwhile."""
    cache = live_cache()
    aggregate_id = uuid.uuid4()
    loading = threading.Event()
    announced = threading.Event()

    def slow_load() -> str:
        loading.set()
        assert announced.wait(5)
        return "stale"

    def announce() -> None:
        assert loading.wait(5)
        cache.announced(str(aggregate_id))
        announced.set()

    thread = threading.Thread(target=announce, daemon=True)
    thread.start()
    assert cache.get(aggregate_id, slow_load) == "stale"
    thread.join(5)
    assert not thread.is_alive()
    load = Loader("fresh")
    assert cache.get(aggregate_id, load) == "fresh"
    assert load.calls == 1


# Bounded size


def test_when_full_it_is_cleared_before_keeping_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "MAX_ENTRIES", 2)
    cache = live_cache()
    a, b, c = ids(3)
    loads = {a: Loader("a"), b: Loader("b"), c: Loader("c")}
    cache.get(a, loads[a])
    cache.get(b, loads[b])
    cache.get(a, loads[a])
    cache.get(b, loads[b])
    assert (loads[a].calls, loads[b].calls) == (1, 1)  # two fit
    cache.get(c, loads[c])  # full: cleared, then c kept
    assert cache.get(c, loads[c]) == "c"
    assert loads[c].calls == 1
    assert cache.get(a, loads[a]) == "a"
    assert cache.get(b, loads[b]) == "b"  # {c, a} is full again: cleared, then b kept
    assert (loads[a].calls, loads[b].calls) == (2, 2)
    cache.get(b, loads[b])
    assert loads[b].calls == 2
    cache.get(c, loads[c])
    assert loads[c].calls == 2


def test_it_never_holds_more_than_max_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(credentials, "MAX_ENTRIES", 5)
    cache = live_cache()
    for aggregate_id in ids(23):
        cache.get(aggregate_id, Loader("x"))
        assert len(cache._items) <= 5
    assert len(cache._items) == 3  # 23 = 4 * 5 + 3


def test_the_default_bound() -> None:
    assert credentials.MAX_ENTRIES == 10_000


# What changes credentials


class Token:
    class TokenRevoked:
        pass


class Organization:
    class AdminRemoved:
        pass


class User:
    class UserCreated:
        pass


class TokenLike:
    class Event:
        pass


def test_token_and_organization_events_change_credentials_and_others_do_not() -> None:
    assert KINDS == ("Token.", "Organization.")
    assert changes_credentials(Token.TokenRevoked())
    assert changes_credentials(Organization.AdminRemoved())
    assert not changes_credentials(User.UserCreated())
    assert not changes_credentials(TokenLike.Event())  # "TokenLike." is not "Token."
    assert not changes_credentials(object())


def test_the_channel_name_is_a_plain_identifier() -> None:
    assert CHANNEL == "scimledger_credentials"
