"""ledger.ids: users' and groups' ids are version 7 UUIDs, in the order they were made."""

from __future__ import annotations

import time
import uuid

from freezegun import freeze_time

from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.ledger.groups import Group
from scimledger.ledger.ids import time_ordered_id
from scimledger.ledger.users import User


def test_an_id_is_a_version_7_uuid_whose_first_48_bits_are_its_time_in_milliseconds() -> None:
    with freeze_time("2026-12-07 20:40:00.125"):
        made = time_ordered_id()
        now = time.time_ns() // 1_000_000
    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert made.int >> 80 == now
    assert abs(now - 1_796_676_000_125) <= 1  # 2026-12-07T20:40:00.125Z, as freezegun rounds


def test_ids_made_milliseconds_apart_sort_in_that_order_and_never_repeat() -> None:
    made = []
    for n in range(50):
        with freeze_time(f"2026-12-07 20:40:00.{2 * n + 1:03d}"):  # 2 ms apart
            made.append(time_ordered_id())
    assert sorted(made) == made
    assert sorted(str(one) for one in made) == [str(one) for one in made]  # as text too
    with freeze_time("2026-12-07 20:40:00"):
        same_moment = {time_ordered_id() for _ in range(1000)}
    assert len(same_moment) == 1000  # 74 random bits each


def test_users_and_groups_get_time_ordered_ids() -> None:
    context = CommandContext(uuid.uuid4(), Actor.operator("test"), RequestInfo.local())
    user = User(org_id=context.org_id, attributes={"userName": "a"}, active=True, context=context)
    group = Group(org_id=context.org_id, display_name="g", external_id=None, context=context)
    assert (user.id.version, group.id.version) == (7, 7)
