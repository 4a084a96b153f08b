"""The store's idea of the newest schema agrees with its alembic migrations."""

from alembic.config import Config
from alembic.script import ScriptDirectory

from cachenet.store.engine import MIGRATIONS, SCHEMA_REVISION


def test_schema_revision_is_the_newest_migration():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_REVISION]
