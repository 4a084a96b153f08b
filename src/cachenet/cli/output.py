"""Output of listing commands: a rich table for people, JSON (--json) for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence

import click
from rich.console import Console
from rich.table import Table

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def emit_rows(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str], as_json: bool, title: str = ""
) -> None:
    """Print ``rows`` as a table with ``columns``, or as a JSON list."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    # Piped output is not cut to 80 columns: operators grep it.
    Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200).print(table)


def emit_mapping(values: Mapping[str, object], as_json: bool, title: str = "") -> None:
    """Print one object as a two-column table, or as a JSON object."""
    if as_json:
        click.echo(json.dumps(dict(values), indent=2, default=str))
        return
    emit_rows([{"name": k, "value": v} for k, v in values.items()], ["name", "value"], False, title)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)
