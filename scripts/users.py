"""`scimledger users erase`: a person's data erased on request (GDPR article 17), by
destroying their data key (ledger.keys); what stays is in the README's "Erasure"."""

from __future__ import annotations

import argparse
from uuid import UUID

from scimledger.ledger.context import Actor, CommandContext, RequestInfo
from scimledger.scripts import audit
from scimledger.scripts.command import Commands, UsageError, family, opened, runs


def erase(args: argparse.Namespace) -> int:
    with opened(args) as ledger:
        org_id = ledger.organization_id(args.org)
        if org_id is None:
            raise UsageError(f"no organization {args.org!r}")
        _, ids = audit.subjects(ledger, args.user, args.org)
        if len(ids) > 1:
            raise UsageError(
                f"{len(ids)} users had the userName {args.user!r}: give the id of the one to"
                f" erase ({', '.join(ids)})"
            )
        user_id = UUID(ids[0])
        context = CommandContext(
            org_id=org_id,
            actor=Actor.operator("scimledger users erase"),
            request=RequestInfo.local(),
        )
        written = ledger.erase_user(context, user_id, args.reason, force=args.force)
    if written.position is None:
        print(f"user {user_id} was erased already: nothing changed")
    else:
        print(
            f"erased user {user_id}: their data key is destroyed; recorded at position"
            f" {written.position:,}"
        )
    return 0


def add_commands(commands: Commands) -> None:
    actions = family(commands, "users", "a person's data: erasure")
    parser = actions.add_parser(
        "erase",
        help="erase a deleted or deactivated user's personal data, in every event and read"
        " model (deletes them first if needed)",
    )
    parser.add_argument("user", metavar="USER", help="the user's id, or their userName")
    parser.add_argument("--org", required=True)
    parser.add_argument(
        "--reason",
        required=True,
        help="why, kept in clear for ever: a request's reference or a policy, never who",
    )
    parser.add_argument(
        "--force", action="store_true", help="erase an active user too (they are cut off)"
    )
    runs(parser, erase)
