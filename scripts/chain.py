"""`scimledger ledger verify|digest`: the tamper evidence of the event log, its hash chain
checked end to end and its head exported as a digest to keep outside the database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scimledger.ledger.application import Ledger
from scimledger.projections import chain
from scimledger.scripts import ledger_copy, ledger_dump
from scimledger.scripts.command import Commands, UsageError, family, opened, runs


def verify(args: argparse.Namespace) -> int:
    key = _key(args.key)
    digest_text = _read(args.digest, "the digest").decode() if args.digest else None
    with opened(args) as ledger:
        result = _verified(ledger)
        problem = result.problem
        if problem is None and digest_text is not None:
            problem = chain.check_digest(ledger, digest_text, key)
    if problem is not None:
        print(f"BROKEN after {result.checked} good events: {problem}", file=sys.stderr)
        return 1
    print(
        f"OK: {result.checked} events verified; head at position {result.head_position}:"
        f" {result.head_link}" + (" (matches the digest)" if digest_text else "")
    )
    return 0


def digest(args: argparse.Namespace) -> int:
    key = _key(args.key)
    with opened(args) as ledger:
        result = _verified(ledger)
    if not result.ok:
        print(f"BROKEN: {result.problem}; no digest of a broken chain", file=sys.stderr)
        return 1
    print(chain.digest(result, key))
    return 0


def _key(path: str | None) -> bytes | None:
    return None if path is None else _read(path, "the key file").strip()


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what}: {exc}") from exc


def _verified(ledger: Ledger) -> chain.Verification:
    return chain.extend_and_verify(ledger)


def add_commands(commands: Commands) -> None:
    actions = family(commands, "ledger", "tamper evidence of the event log")
    parser = actions.add_parser(
        "verify", help="recompute the hash chain over every event; exit 1 at the first break"
    )
    parser.add_argument("--digest", metavar="FILE", help="also check against an exported digest")
    parser.add_argument("--key", metavar="FILE", help="the key the digest was signed with")
    runs(parser, verify)
    parser = actions.add_parser(
        "digest", help="print the verified chain head as a digest to keep outside the database"
    )
    parser.add_argument("--key", metavar="FILE", help="sign the digest with HMAC-SHA256")
    runs(parser, digest)
    ledger_copy.add(actions)
    ledger_dump.add(actions, runs)
