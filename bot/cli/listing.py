"""Listings as a table, JSON or CSV, all three from one list of columns.

Every listing command (`grants`, `identities`, `requests`, `scan`) names its columns once
(`bot.cli.columns`); the table's header, the JSON objects' keys and the CSV header are those
names, in that order, so a script can switch formats without renaming a field.

- json: a list of objects; lists stay lists, a missing value is null.
- csv: a header row, then one row per record; lists joined with ";", a missing value empty.
- table: rich. On a terminal it fits the terminal's width: long values wrap, none is cut, and
  where even the headers would not fit side by side each row becomes a block of `field value`
  lines (as psql's expanded mode). Not on a terminal it is COLUMNS wide when that is set, else
  as wide as its longest row needs, one line per row (width-independent, for grep and diff).
  A last line counts the rows.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

import click
from rich import box
from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.table import Table

R = TypeVar("R")
Cell = str | int | bool | list[str] | None
Record = dict[str, Cell]
FORMATS = ("table", "json", "csv")
# "As wide as it needs": rich lays a table out no wider than its content.
_UNBOUNDED = 100_000
# A column narrower than this (when its values are longer) is unreadable: rows become blocks.
_NARROWEST = 12


class Fit(StrEnum):
    """How a column gives way when the table is too wide for the terminal."""

    FOLD = "fold"  # long values (ARNs, lists, reasons) wrap onto more lines
    KEEP = "keep"  # short values (ids, states, counts) stay on one line
    NUMBER = "number"  # kept on one line, right-aligned


@dataclass(frozen=True, slots=True)
class Column(Generic[R]):
    name: str
    value: Callable[[R], Cell]
    fit: Fit = Fit.FOLD


@dataclass(frozen=True, slots=True)
class Listing(Generic[R]):
    """One listing's columns, and what its rows are called ("grants", "grant")."""

    noun: str
    one: str
    columns: tuple[Column[R], ...]

    def count(self, rows: int) -> str:
        """The table's last line: "1 grant", "3 grants"."""
        return f"{rows} {self.one if rows == 1 else self.noun}"

    @property
    def fields(self) -> list[str]:
        return [column.name for column in self.columns]

    def records(self, rows: Sequence[R]) -> list[Record]:
        return [{column.name: column.value(row) for column in self.columns} for row in rows]


def when(moment: datetime | None) -> str | None:
    """A time as ISO 8601 to the second (None stays None)."""
    return moment.isoformat(timespec="seconds") if moment is not None else None


def format_option() -> Callable[[Callable[..., object]], Callable[..., object]]:
    """The `--format` option every listing command takes."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json (a list of objects) or csv (with a header) for scripts.",
    )


def output_width() -> int | None:
    """The table's width: the terminal's, else COLUMNS when set, else None (as needed)."""
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def render(listing: Listing[R], rows: Sequence[R], fmt: str, *, width: int | None = None) -> str:
    """The rows in `fmt` (table, json or csv), fields in the listing's column order."""
    records = listing.records(rows)
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        return _csv(listing.fields, records)
    if fmt == "table":
        return _table(listing, records, width)
    raise ValueError(f"unknown format {fmt!r}")


def _csv_cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    return str(value)


def _csv(fields: list[str], records: list[Record]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([_csv_cell(record[field]) for field in fields] for record in records)
    return out.getvalue().rstrip("\n")


def _table_cell(value: Cell) -> str:
    if value is None or value == []:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value)
    return str(value)


def _console(width: int | None) -> tuple[Console, io.StringIO]:
    terminal = sys.stdout.isatty()
    out = io.StringIO()
    console = Console(
        file=out,
        width=width or _UNBOUNDED,
        force_terminal=terminal,
        no_color=not terminal,
        highlight=False,
    )
    return console, out


def _lines(out: io.StringIO) -> list[str]:
    return [line.rstrip() for line in out.getvalue().splitlines()]


def _table(listing: Listing[R], records: list[Record], width: int | None) -> str:
    if not records:
        return f"No {listing.noun}."
    cells = [[_table_cell(record[field]) for field in listing.fields] for record in records]
    widths = _widths(listing.fields, cells, width)
    if widths is None:
        return _cards(listing, records, width or _UNBOUNDED)
    table = Table(
        box=box.SIMPLE_HEAD,
        header_style="bold",
        collapse_padding=True,
        pad_edge=False,
        show_edge=False,
    )
    for column, column_width in zip(listing.columns, widths, strict=True):
        justify: JustifyMethod = "right" if column.fit is Fit.NUMBER else "left"
        table.add_column(column.name, justify=justify, overflow="fold", width=column_width)
    for row in cells:
        table.add_row(*row)
    console, out = _console(width)
    console.print(table)
    return "\n".join([*_lines(out), listing.count(len(records))])


def _widths(fields: list[str], cells: list[list[str]], width: int | None) -> list[int] | None:
    """Each column's width: as wide as its values when that fits; else the narrow columns
    keep theirs and the wide ones share what is left equally (their values wrap). None when
    a column would get fewer than `_NARROWEST` characters (or its header's) it needs."""
    natural = [
        max(cell_len(name), *(cell_len(line) for row in cells for line in row[i].splitlines()))
        for i, name in enumerate(fields)
    ]
    if width is None:
        return natural
    available = width - 2 * (len(fields) - 1)
    if sum(natural) <= available:
        return natural
    widths = list(natural)
    order = sorted(range(len(fields)), key=lambda i: natural[i])
    for done, i in enumerate(order):
        share = available // (len(fields) - done)
        widths[i] = min(natural[i], share)
        if widths[i] < min(natural[i], max(_NARROWEST, cell_len(fields[i]))):
            return None
        available -= widths[i]
    return widths


def _cards(listing: Listing[R], records: list[Record], width: int) -> str:
    """Too narrow for a column per field: each row as a block of `field value` lines."""
    console, out = _console(width)
    for index, record in enumerate(records):
        card = Table.grid(padding=(0, 2))
        card.add_column(style="bold", no_wrap=True)
        card.add_column(overflow="fold")
        for field in listing.fields:
            card.add_row(field, _table_cell(record[field]))
        if index:
            console.print()
        console.print(card)
    return "\n".join([*_lines(out), listing.count(len(records))])
