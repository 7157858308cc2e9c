"""The User aggregate (ledger.users) on its own: the events each command records, the state
after, and the same state rebuilt from those events. No ledger, no event store."""

from __future__ import annotations

from typing import Any

from scimledger.ledger.users import (
    User,
    apply_changes,
    attribute_changes,
    hash_password,
    verify_password,
)
from tests.unit.events import CONTEXT, OPERATOR, ORG_ID, T0, at, clock, recorded, replay

ADA: dict[str, Any] = {
    "userName": "ada@acme.example",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@acme.example", "primary": True}],
}
SALT = b"0123456789abcdef"
# scrypt of "correct horse" with SALT: the stored format, which must stay verifiable.
HASH = "scrypt$16384$8$1$MDEyMzQ1Njc4OWFiY2RlZg==$0LupyHkzAIgDr9UDsriAAf87vMbCbcaUfDvFOAHk0D0="


def new_user(active: bool = True) -> User:
    """Ada, created at T0 with her creation event already collected."""
    with clock():
        user = User(org_id=ORG_ID, attributes=ADA, active=active, context=CONTEXT)
    user.collect_events()
    return user


def test_creating_a_user_records_user_created() -> None:
    with clock():
        user = User(org_id=ORG_ID, attributes=ADA, active=True, context=CONTEXT)
    assert recorded(user) == [
        (
            User.UserCreated,
            {
                "originator_version": 1,
                "timestamp": T0,
                "originator_topic": "scimledger.ledger.users:User",
                "org_id": ORG_ID,
                "attributes": ADA,
                "active": True,
                "context": CONTEXT,
            },
        )
    ]


def test_a_new_user_holds_what_it_was_created_with() -> None:
    user = new_user(active=False)
    assert (user.org_id, user.attributes, user.active, user.deleted, user.password_hash) == (
        ORG_ID,
        ADA,
        False,
        False,
        None,
    )
    assert (user.version, user.created_on, user.modified_on) == (1, T0, T0)


def test_a_user_keeps_its_own_copy_of_the_attributes_it_was_created_with() -> None:
    attributes = {"userName": "ada@acme.example"}
    user = User(org_id=ORG_ID, attributes=attributes, active=True, context=CONTEXT)
    attributes["userName"] = "eve@acme.example"
    assert user.attributes == {"userName": "ada@acme.example"}


def test_user_name_is_the_username_attribute() -> None:
    assert new_user().user_name == "ada@acme.example"


def test_replacing_attributes_records_only_what_changed() -> None:
    user = new_user()
    replacement = {
        "userName": "ada@acme.example",
        "name": {"givenName": "Ada", "familyName": "King"},
        "title": "Countess",
    }
    with clock(at(1)):
        user.replace_attributes(replacement, CONTEXT)
    assert recorded(user) == [
        (
            User.ProfileUpdated,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "changes": {
                    "name": {"givenName": "Ada", "familyName": "King"},
                    "title": "Countess",
                    "emails": None,
                },
                "context": CONTEXT,
            },
        )
    ]
    assert (user.attributes, user.version, user.modified_on) == (replacement, 2, at(1))


def test_replacing_attributes_with_equal_ones_records_nothing() -> None:
    user = new_user()
    user.replace_attributes(dict(ADA), CONTEXT)
    assert recorded(user) == []
    assert (user.attributes, user.version) == (ADA, 1)


def test_deactivating_an_active_user_records_user_deactivated() -> None:
    user = new_user()
    with clock(at(1)):
        user.set_active(False, OPERATOR)
    assert recorded(user) == [
        (
            User.UserDeactivated,
            {"originator_version": 2, "timestamp": at(1), "context": OPERATOR},
        )
    ]
    assert user.active is False


def test_deactivating_an_inactive_user_records_nothing() -> None:
    user = new_user(active=False)
    user.set_active(False, CONTEXT)
    assert recorded(user) == []
    assert (user.active, user.version) == (False, 1)


def test_reactivating_an_inactive_user_records_user_reactivated() -> None:
    user = new_user(active=False)
    with clock(at(1)):
        user.set_active(True, CONTEXT)
    assert recorded(user) == [
        (
            User.UserReactivated,
            {"originator_version": 2, "timestamp": at(1), "context": CONTEXT},
        )
    ]
    assert user.active is True


def test_activating_an_active_user_records_nothing() -> None:
    user = new_user()
    user.set_active(True, CONTEXT)
    assert recorded(user) == []
    assert (user.active, user.version) == (True, 1)


def test_setting_a_password_records_its_salted_hash_and_never_the_password() -> None:
    user = new_user()
    with clock(at(1)):
        user.set_password("correct horse", SALT, CONTEXT)
    events = recorded(user)
    assert events == [
        (
            User.PasswordChanged,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "password_hash": HASH,
                "context": CONTEXT,
            },
        )
    ]
    assert "correct horse" not in repr(events)
    assert user.password_hash == HASH


def test_setting_the_password_already_set_records_nothing() -> None:
    user = new_user()
    user.set_password_hash(HASH, CONTEXT)
    user.collect_events()
    user.set_password("correct horse", b"another salt....", CONTEXT)
    assert recorded(user) == []
    assert (user.password_hash, user.version) == (HASH, 2)


def test_setting_a_different_password_records_its_hash() -> None:
    user = new_user()
    user.set_password_hash(HASH, CONTEXT)
    user.collect_events()
    user.set_password("battery staple", SALT, CONTEXT)
    expected = hash_password("battery staple", SALT)
    [(kind, fields)] = recorded(user)
    assert (kind, fields["password_hash"]) == (User.PasswordChanged, expected)
    assert user.password_hash == expected


def test_setting_a_password_hash_records_it_as_given() -> None:
    user = new_user()
    with clock(at(1)):
        user.set_password_hash("scrypt$precomputed", CONTEXT)
    assert recorded(user) == [
        (
            User.PasswordChanged,
            {
                "originator_version": 2,
                "timestamp": at(1),
                "password_hash": "scrypt$precomputed",
                "context": CONTEXT,
            },
        )
    ]
    assert user.password_hash == "scrypt$precomputed"


def test_an_initial_password_hash_is_stamped_at_the_creation_instant() -> None:
    with clock():
        user = User(org_id=ORG_ID, attributes=ADA, active=True, context=CONTEXT)
        user.set_initial_password_hash(HASH, CONTEXT)
    [_, (kind, fields)] = recorded(user)
    assert (kind, fields["originator_version"], fields["timestamp"]) == (
        User.PasswordChanged,
        2,
        T0,
    )
    assert (user.password_hash, user.modified_on) == (HASH, user.created_on)


def test_deleting_a_user_records_user_deleted() -> None:
    user = new_user()
    with clock(at(1)):
        user.delete(CONTEXT)
    assert recorded(user) == [
        (User.UserDeleted, {"originator_version": 2, "timestamp": at(1), "context": CONTEXT})
    ]
    assert user.deleted is True


def test_deleting_a_deleted_user_records_nothing() -> None:
    user = new_user()
    user.delete(CONTEXT)
    user.collect_events()
    user.delete(CONTEXT)
    assert recorded(user) == []


def test_replaying_a_users_events_rebuilds_the_same_user() -> None:
    with clock():
        user = User(org_id=ORG_ID, attributes=ADA, active=True, context=CONTEXT)
        user.set_initial_password_hash(HASH, CONTEXT)
        user.replace_attributes({"userName": "ada.king@acme.example"}, CONTEXT)
        user.set_active(False, CONTEXT)
        user.set_active(True, CONTEXT)
        user.set_password_hash("scrypt$other", CONTEXT)
        user.delete(CONTEXT)
    events = user.collect_events()
    assert len(events) == 7
    assert replay(User, events) == user


def test_attribute_changes_are_the_changed_added_and_removed_keys() -> None:
    before = {"userName": "ada", "title": "Countess", "nickName": "Ada"}
    after = {"userName": "ada", "title": "Analyst", "displayName": "Ada L."}
    assert attribute_changes(before, after) == {
        "title": "Analyst",
        "displayName": "Ada L.",
        "nickName": None,
    }


def test_applying_attribute_changes_gives_the_attributes_after() -> None:
    before = {"userName": "ada", "title": "Countess", "nickName": "Ada"}
    after = {"userName": "ada", "title": "Analyst", "displayName": "Ada L."}
    assert apply_changes(before, attribute_changes(before, after)) == after
    assert before == {"userName": "ada", "title": "Countess", "nickName": "Ada"}


def test_a_password_verifies_against_its_hash_and_no_other() -> None:
    assert verify_password("correct horse", HASH) is True
    assert verify_password("Correct horse", HASH) is False
