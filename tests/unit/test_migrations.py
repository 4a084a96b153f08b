"""The store's idea of the newest schema agrees with its alembic migrations."""

from alembic.script import ScriptDirectory

from cachenet.store.phases import (
    EXPAND_REVISION,
    EXPANDED_REVISION,
    SCHEMA_REVISION,
    alembic_config,
)


def scripts(chain):
    return ScriptDirectory.from_config(alembic_config(chain))


def test_schema_revision_is_the_newest_migration():
    assert scripts("versions").get_heads() == [SCHEMA_REVISION]


def test_the_expand_chain_ends_at_the_expand_revision():
    assert scripts("expand").get_heads() == [EXPAND_REVISION]


def test_the_contract_follows_the_revision_the_previous_release_checks_for():
    assert scripts("versions").get_revision(SCHEMA_REVISION).down_revision == EXPANDED_REVISION
