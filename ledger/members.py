"""Group membership: who may join a group and who really joins or leaves.

A group's events record the ids that joined and left, but its aggregate does not keep the
member list: a group may have 50,000 members, and loading it for every change would decode
them all. The ledger asks the read side instead, through `Directory` (implemented by the
SCIM read model's queries). It asks while the group's writers take turns (ledger.turns) and
after catching the read model up, so the answers describe the group at the version the
change is planned on; if another process wrote the group meanwhile, the save conflicts and
the ledger plans again.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from scimledger.ledger.commands import GroupUpdate
from scimledger.ledger.errors import UnknownMembers


class DirectoryReader(Protocol):
    """One consistent read of the organization's users and groups' members."""

    def users_among(self, org_id: UUID, ids: list[UUID]) -> set[UUID]: ...

    def members_among(self, group_id: UUID, ids: list[UUID]) -> set[UUID]: ...

    def all_members(self, group_id: UUID) -> set[UUID]: ...


class Directory(Protocol):
    """The read side the ledger checks membership against."""

    def catch_up(self) -> None:
        """Brings the read model up to the head of the log."""

    def read(self) -> AbstractContextManager[DirectoryReader]: ...


@dataclass(frozen=True)
class MemberChange:
    """Exactly the users who join and who leave."""

    add: frozenset[UUID] = frozenset()
    remove: frozenset[UUID] = frozenset()


# Unknown ids named in an error, at most.
_SHOWN_UNKNOWN = 10


def parse_ids(ids: Iterable[str]) -> tuple[list[UUID], list[str]]:
    """The ids that are UUIDs, normalized, and those that are not."""
    good: list[UUID] = []
    bad: list[str] = []
    for given in ids:
        try:
            good.append(UUID(given))
        except ValueError:
            bad.append(given)
    return good, bad


def users(reader: DirectoryReader, org_id: UUID, ids: Iterable[UUID | str]) -> frozenset[UUID]:
    """The given ids as users of the organization; UnknownMembers if any is not one."""
    parsed, malformed = parse_ids(sorted(str(i) for i in ids))
    known = reader.users_among(org_id, parsed)
    unknown = malformed + [str(u) for u in parsed if u not in known]
    if unknown:
        shown = ", ".join(unknown[:_SHOWN_UNKNOWN]) + (
            " ..." if len(unknown) > _SHOWN_UNKNOWN else ""
        )
        raise UnknownMembers(
            f"Unknown member ids (members must be users of this organization; nested groups"
            f" are not supported): {shown}"
        )
    return frozenset(parsed)


def plan(
    reader: DirectoryReader, org_id: UUID, group_id: UUID, update: GroupUpdate
) -> MemberChange:
    """Who joins and who leaves the group if `update` is applied to it now."""
    if update.replace_members is not None:
        wanted = users(reader, org_id, update.replace_members)
        current = reader.all_members(group_id)
        return MemberChange(add=frozenset(wanted - current), remove=frozenset(current - wanted))
    adding = sorted(users(reader, org_id, update.add))
    already = reader.members_among(group_id, adding)
    removing = parse_ids(sorted(update.remove))[0]
    return MemberChange(
        add=frozenset(u for u in adding if u not in already),
        remove=frozenset(reader.members_among(group_id, removing)),
    )
