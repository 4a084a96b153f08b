"""Output of the commands: a rich table for people, JSON (--json) for programs.

Values come from the store, libvirt and the command line, any of which a
hostile user may have filled: every value is printed literally. Nothing is
parsed as rich markup (cells are ``Text``, never markup strings) and control
characters are shown as ``\\xNN`` instead of reaching the terminal. JSON
output is exact: ``json.dumps`` escapes control characters itself.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

# C0 (newline and tab included: one value, one line), DEL and C1: ESC and CSI
# would let a value move the cursor, recolour or retitle the operator's terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def literal(value: object) -> str:
    """``value`` as text safe to print: each control character shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def emit_rows(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str], as_json: bool, title: str = ""
) -> None:
    """Print ``rows`` as a table with ``columns``, or as a JSON list."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    # rich is imported for tables only: --json (what scripts call) does without it.
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(literal(title)) if title else None)
    for column in columns:
        table.add_column(Text(literal(column)))
    for row in rows:
        table.add_row(*(Text(_cell(row.get(c))) for c in columns))
    # Piped output is not cut to 80 columns: operators grep it.
    width = None if sys.stdout.isatty() else 200
    Console(soft_wrap=True, width=width, markup=False, highlight=False).print(table)


def emit_mapping(values: Mapping[str, object], as_json: bool, title: str = "") -> None:
    """Print one object as a two-column table, or as a JSON object."""
    if as_json:
        click.echo(json.dumps(dict(values), indent=2, default=str))
        return
    emit_rows([{"name": k, "value": v} for k, v in values.items()], ["name", "value"], False, title)


def emit_lines(lines: Iterable[str], nothing: str) -> None:
    """Print what a command changed, one line each, or that there was nothing to do."""
    printed = False
    for line in lines:
        click.echo(literal(line))
        printed = True
    if not printed:
        click.echo(f"nothing to do: {literal(nothing)}")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(literal(v) for v in value) or "-"
    return literal(value)
