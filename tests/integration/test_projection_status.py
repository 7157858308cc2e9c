"""`scimledger projections status`: each projection's position, the head, the lag."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time

from scimledger.ledger.application import Ledger
from scimledger.projections.registry import all_projections
from scimledger.projections.runner import Runner, status
from scimledger.projections.scim_projection import ScimProjection
from tests.conftest import issue

SCIMLEDGER = str(Path(sys.executable).parent / "scimledger")
T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)


def cli_status(ledger: Ledger) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCIMLEDGER, "projections", "status", "--format", "csv", "--database", ledger.database.url],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.no_read_models
def test_a_caught_up_projection_has_no_lag_and_a_missing_one_is_stalled(ledger: Ledger) -> None:
    with freeze_time(T0):
        issue(ledger)  # two events
    Runner(ledger, ScimProjection()).run_once()
    by_name = {s.name: s for s in status(ledger, all_projections(), T0 + timedelta(minutes=5))}
    scim = by_name["scim_read_model_v6"]
    assert (scim.position, scim.head, scim.lag_events, scim.lag_seconds) == (2, 2, 0, 0.0)
    assert not scim.stalled(60)
    chain = by_name["ledger_chain_v1"]
    assert (chain.position, chain.lag_events, chain.lag_seconds) == (None, 2, 300.0)
    assert chain.stalled(60)


def test_lag_is_the_age_of_the_oldest_unapplied_event(ledger: Ledger) -> None:
    with freeze_time(T0):
        issue(ledger)
    Runner(ledger, ScimProjection()).run_once()
    with freeze_time(T0 + timedelta(seconds=30)):
        issue(ledger, name="second")
    [scim] = [
        s
        for s in status(ledger, all_projections(), T0 + timedelta(seconds=90))
        if s.name == "scim_read_model_v6"
    ]
    assert (scim.lag_events, scim.lag_seconds) == (1, 60.0)
    assert scim.stalled(59)
    assert not scim.stalled(60)


@pytest.mark.no_read_models
def test_the_cli_exits_1_while_a_projection_is_stalled_and_0_once_all_caught_up(
    ledger: Ledger,
) -> None:
    issue(ledger)
    stalled = cli_status(ledger)
    assert stalled.returncode == 1
    assert stalled.stdout.splitlines()[0] == (
        "projection,position,head,lag_events,lag_seconds,state"
    )
    for projection in all_projections():
        Runner(ledger, projection).run_once()
    fine = cli_status(ledger)
    assert fine.returncode == 0, fine.stdout
    assert [line.split(",")[-1] for line in fine.stdout.splitlines()[1:]] == ["ok"] * 4
