"""The key store's own forms of ids (ledger.keys)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from scimledger.ledger.keys import INDEX_OWNER, _text


@pytest.mark.parametrize(
    "owner",
    [
        INDEX_OWNER,
        UUID("00000000-0000-4000-8000-000000000001"),
        UUID("000a0b0c-0d0e-4f00-8a0b-0c0d0e0f0001"),
        UUID(int=2**128 - 1),
        uuid4(),
    ],
)
def test_an_owners_id_is_looked_up_as_the_text_data_keys_stores(owner: UUID) -> None:
    assert _text(owner.int) == str(owner)
