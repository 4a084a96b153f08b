"""Expand and contract: the schema changes while hosts of two releases share one database.

Hundreds of compute nodes share the store and are upgraded one at a time, so a
schema change comes in two phases (as Nova's and Neutron's do):

- **expand** only adds (nullable columns, indexes, tables). Every host of this
  release applies it when it opens the store. Its revisions have their own
  chain (``migrations/expand``) and version table, so ``alembic_version`` stays
  at the previous release's revision (EXPANDED_REVISION): hosts still running
  it keep working, writing the old columns, which this release writes too and
  reads when the new ones are NULL.
- **contract** fills the new columns from the old ones and drops the old. Only
  ``cachenet db upgrade`` applies it, and only once no host of an older release
  is seen: every host named in ``ports`` or ``port_events`` has recorded this
  generation in ``hosts`` (it does so when it opens the store) or was marked
  upgraded by the operator. It moves ``alembic_version`` on, so an older
  release refuses the database from then on.

A new database is created expanded and contracted at once (no older host can
be using it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, insert, inspect, select, text, union, update

from cachenet.errors import StoreError
from cachenet.store.engine import ConcurrentUpgrade, migrate, run_transaction
from cachenet.store.schema import expanded_port_events, expanded_ports, hosts

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision of each chain (a test checks they agree with the scripts):
# comparing against them needs no alembic import on every command.
SCHEMA_REVISION = "0003"  # main chain head: the contracted schema
EXPANDED_REVISION = "0002"  # main chain while expanded: what the previous release checks for
EXPAND_REVISION = "e002"  # expand chain head
# Every revision of the expand chain: a database part-way along it is expanded further.
EXPAND_REVISIONS = (None, "e001", EXPAND_REVISION)
EXPAND_VERSION_TABLE = "cachenet_expand_version"
KNOWN_REVISIONS = (None, "0001", EXPANDED_REVISION, SCHEMA_REVISION)
# This release's schema generation, recorded in ``hosts``; the previous release
# records none (generation 1).
GENERATION = 2

# What ``upgrade`` applied.
EXPAND, CONTRACT, BOTH, NOTHING = "expand", "contract", "expand and contract", "nothing to do"


@dataclass(frozen=True)
class SchemaState:
    """Where the two migration chains of a database stand (None: not started)."""

    main: str | None
    expand: str | None

    @property
    def expanded(self) -> bool:
        """This release can run on it (contracted or not)."""
        return self.expand == EXPAND_REVISION and self.main in (EXPANDED_REVISION, SCHEMA_REVISION)

    @property
    def contracted(self) -> bool:
        return self.expanded and self.main == SCHEMA_REVISION

    def check_known(self) -> None:
        """StoreError when a newer release moved either chain past what this one knows."""
        if self.main not in KNOWN_REVISIONS or self.expand not in EXPAND_REVISIONS:
            raise StoreError(
                f"the port store's schema (revision {self.main}, expand {self.expand}) is newer "
                "than this cachenet's: upgrade cachenet on this host"
            )

    @property
    def pending(self) -> str:
        """The phase ``cachenet db upgrade`` would apply next."""
        if not self.expanded:
            return EXPAND
        return NOTHING if self.contracted else CONTRACT


class ContractRefused(StoreError):
    """Hosts still running an older release use the database."""


def read_state(connection: Connection) -> SchemaState:
    found = inspect(connection)
    main = expand = None
    if found.has_table("alembic_version"):
        main = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if found.has_table(EXPAND_VERSION_TABLE):
        expand = connection.execute(
            text(f"SELECT version_num FROM {EXPAND_VERSION_TABLE}")
        ).scalar()
    return SchemaState(main, expand)


def schema_state(engine: Engine) -> SchemaState:
    return run_transaction(engine, read_state)


def expand(engine: Engine) -> SchemaState:
    """Apply the expand phase if it is missing (a new database: both phases); never the contract.

    What opening the store does. Returns the state after it.
    """

    def step(connection: Connection) -> SchemaState:
        state = read_state(connection)
        state.check_known()
        if state.main is None:
            _create(connection)
        elif not state.expanded:
            _expand(connection)
        return read_state(connection)

    return migrate(engine, step)


def upgrade(engine: Engine, upgraded_hosts: Iterable[str] = ()) -> str:
    """``cachenet db upgrade``: apply the next pending phase; which one it was.

    ``upgraded_hosts``: hosts the operator says run this release or are gone
    (recorded first, so that they do not hold the contract back; kept when the
    contract is refused for other hosts, so a later run need not name them again).
    Raises ContractRefused while a host of an older release is seen.
    """
    marked = list(upgraded_hosts)

    def step(connection: Connection) -> str | list[str]:
        state = read_state(connection)
        state.check_known()
        if state.main is None:
            _create(connection)
            return BOTH
        if not state.expanded:
            _expand(connection)
        for name in marked:
            _record(connection, name)
        if not state.expanded:
            return EXPAND
        if state.contracted:
            return NOTHING
        older = older_hosts(connection)
        if older:
            return older  # refused after the commit, which keeps the hosts just marked
        _alembic(connection, "versions", "alembic_version", SCHEMA_REVISION)
        return CONTRACT

    applied = migrate(engine, step)
    if isinstance(applied, list):
        raise ContractRefused(
            f"the contract phase waits for {len(applied)} host{'s' if len(applied) > 1 else ''} "
            f"still seen with an older cachenet: {', '.join(applied)} (upgrade them and let "
            "each open the store, or name a host that is gone with --upgraded-host)"
        )
    return applied


def older_hosts(connection: Connection) -> list[str]:
    """Hosts named by a port or an event that have not recorded this generation."""
    named = union(select(expanded_ports.c.host), select(expanded_port_events.c.host)).subquery()
    current = select(hosts.c.name).where(hosts.c.generation >= GENERATION)
    query = select(named.c.host).where(named.c.host.not_in(current)).order_by(named.c.host)
    return [str(name) for name in connection.execute(query).scalars()]


def record_host(engine: Engine, host: str) -> None:
    """Record that ``host`` runs this generation: one indexed read when it already has."""

    def step(connection: Connection) -> None:
        found = connection.execute(select(hosts.c.generation).where(hosts.c.name == host)).scalar()
        if found is None or found < GENERATION:
            _record(connection, host)

    run_transaction(engine, step)


def _record(connection: Connection, host: str) -> None:
    values = {"generation": GENERATION, "seen_at": datetime.now(UTC).replace(tzinfo=None)}
    done = connection.execute(update(hosts).where(hosts.c.name == host).values(**values))
    if not done.rowcount:  # a concurrent insert of the same host fails and is retried
        connection.execute(insert(hosts).values(name=host, **values))


def _create(connection: Connection) -> None:
    _alembic(connection, "versions", "alembic_version", EXPANDED_REVISION)
    _alembic(connection, "expand", EXPAND_VERSION_TABLE, EXPAND_REVISION)
    _alembic(connection, "versions", "alembic_version", SCHEMA_REVISION)


def _expand(connection: Connection) -> None:
    # An older database (0001) first reaches the previous release's schema; one
    # contracted already only lacks the newer expand revisions.
    if read_state(connection).main != SCHEMA_REVISION:
        _alembic(connection, "versions", "alembic_version", EXPANDED_REVISION)
    _alembic(connection, "expand", EXPAND_VERSION_TABLE, EXPAND_REVISION)


def _alembic(connection: Connection, chain: str, version_table: str, revision: str) -> None:
    # Imported here: alembic costs every command a fifth of a second to import.
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config(chain)
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        # On Galera a host on another node moved the version on meanwhile (the
        # schema lock holds on one node only): wait for its upgrade, as for a
        # table it created.
        if "expected to match one row" not in str(exc):
            raise
        raise ConcurrentUpgrade(str(exc)) from None


def alembic_config(chain: str) -> Config:
    """Alembic's configuration for one chain of migrations: "versions" or "expand"."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(MIGRATIONS / chain))
    return config
