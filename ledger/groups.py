"""The Group aggregate.

A group's state holds its name, not its members: membership events carry only the change
(the ids added or removed), and the member set lives in the read model. So a group of 50,000
members loads as fast as an empty one (with snapshots every few events), and adding 1,000
members records 1,000 ids, not 51,000.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.ledger.context import CommandContext
from scimledger.ledger.ids import time_ordered_id
from scimledger.ledger.users import apply_changes, attribute_changes

_NONE: dict[str, Any] = {}


class Group(Aggregate):
    create_id = staticmethod(time_ordered_id)  # ledger.ids

    class GroupCreated(Aggregate.Created):
        org_id: UUID
        display_name: str
        external_id: str | None
        context: CommandContext

    class GroupRenamed(Aggregate.Event):
        display_name: str
        context: CommandContext

    class GroupExternalIdChanged(Aggregate.Event):
        external_id: str | None
        context: CommandContext

    class MembersAdded(Aggregate.Event):
        user_ids: list[UUID]
        context: CommandContext

    class MembersRemoved(Aggregate.Event):
        user_ids: list[UUID]
        context: CommandContext

    class GroupDeleted(Aggregate.Event):
        context: CommandContext

    class ExtensionsChanged(Aggregate.Event):
        """Values of the organization's declared group extensions (ledger.schemas) changed:
        each extension's URN and its new values, None where it has none any more."""

        changes: dict[str, Any]
        context: CommandContext

    # Extension values by URN. A class default (not a field of the aggregate's dataclass):
    # snapshots taken before extensions existed restore without it. Always replaced, never
    # changed in place.
    extensions = _NONE

    @event(GroupCreated)
    def __init__(
        self, org_id: UUID, display_name: str, external_id: str | None, context: CommandContext
    ) -> None:
        self.org_id = org_id
        self.display_name = display_name
        self.external_id = external_id
        self.deleted = False

    def rename(self, display_name: str, context: CommandContext) -> None:
        if display_name != self.display_name:
            self._rename(display_name, context)

    @event(GroupRenamed)
    def _rename(self, display_name: str, context: CommandContext) -> None:
        self.display_name = display_name

    def set_external_id(self, external_id: str | None, context: CommandContext) -> None:
        if external_id != self.external_id:
            self._set_external_id(external_id, context)

    @event(GroupExternalIdChanged)
    def _set_external_id(self, external_id: str | None, context: CommandContext) -> None:
        self.external_id = external_id

    def add_members(self, user_ids: list[UUID], context: CommandContext) -> None:
        """Records the users who became members; the caller passes only actual changes."""
        if user_ids:
            self._add_members(sorted(user_ids), context)

    def add_initial_members(self, user_ids: list[UUID], context: CommandContext) -> None:
        """Records the members given at creation, at the creation's instant, so that a new
        group's lastModified equals its created."""
        if user_ids:
            self.trigger_event(
                self.MembersAdded,
                user_ids=sorted(user_ids),
                context=context,
                timestamp=self.created_on,
            )

    @event(MembersAdded)
    def _add_members(self, user_ids: list[UUID], context: CommandContext) -> None:
        pass  # members live in the read model; see the module docstring

    def remove_members(self, user_ids: list[UUID], context: CommandContext) -> None:
        if user_ids:
            self._remove_members(sorted(user_ids), context)

    @event(MembersRemoved)
    def _remove_members(self, user_ids: list[UUID], context: CommandContext) -> None:
        pass

    def replace_extensions(
        self, extensions: dict[str, Any], context: CommandContext, *, at_creation: bool = False
    ) -> None:
        """Records the extension values that differ from the group's; `at_creation`: those
        given with a new group, at the creation's instant (see add_initial_members)."""
        changes = attribute_changes(self.extensions, extensions)
        if not changes:
            return
        if at_creation:
            self.trigger_event(
                self.ExtensionsChanged, changes=changes, context=context, timestamp=self.created_on
            )
        else:
            self._change_extensions(changes, context)

    @event(ExtensionsChanged)
    def _change_extensions(self, changes: dict[str, Any], context: CommandContext) -> None:
        self.extensions = apply_changes(self.extensions, changes)

    def delete(self, context: CommandContext) -> None:
        if not self.deleted:
            self._delete(context)

    @event(GroupDeleted)
    def _delete(self, context: CommandContext) -> None:
        self.deleted = True
