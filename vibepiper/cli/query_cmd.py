"""`vibepiper query`: read-only SQL, its rows written as they come (table, JSON or CSV)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from vibepiper.cli.common import json_default, json_value

if TYPE_CHECKING:
    from vibepiper.cli.main import Options

TABLE_ROWS = 1000  # what `query` shows as a table unless --limit says otherwise


@click.command()
@click.argument("sql")
@click.option("--json", "fmt", flag_value="json", help="Print an array of objects.")
@click.option("--csv", "fmt", flag_value="csv", help="Print CSV.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help=f"At most N rows (default: {TABLE_ROWS} for the table, all for --json and --csv, "
    "which stream them).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop the query after this long (exit 1).",
)
@click.pass_obj
def query(
    opts: Options, sql: str, fmt: str | None, limit: int | None, timeout: float | None
) -> None:
    """Run one read-only SQL statement over the catalog and one view per asset (its
    current data).

    Tables: runs, materializations, lineage, check_results, current_materializations.
    Each asset is a view by its name (always also as assets.NAME); the rows quarantine
    removed from it are quarantine.NAME. Nothing can be written; a statement that would
    write, or more than one statement, is refused (exit 2), as is a SQL error. Ctrl-C
    stops the query (exit 130).
    """
    writer = {"json": _QueryJson, "csv": _QueryCsv}.get(fmt or "", _QueryTable)(limit)
    opts.load().query_stream(sql, writer, timeout=timeout, iso=fmt is not None)
    writer.finish()


class _QueryOutput:
    """Writes the rows of `query` as they come, up to `limit` of them."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.names: list[str] = []
        self.count = 0
        self.more = False  # rows were left out by the limit

    def __call__(self, names: list[str], batches: Any) -> None:
        self.names = names
        self.start()
        for batch in batches:
            if self.limit is not None and self.count + len(batch) > self.limit:
                batch, self.more = batch[: self.limit - self.count], True
            self.count += len(batch)
            self.write(batch)
            if self.more:
                return

    def start(self) -> None: ...

    def write(self, rows: list[tuple[Any, ...]]) -> None: ...

    def finish(self) -> None:
        if self.more:
            click.echo(
                f"(stopped at {self.count} rows: --limit N shows more, "
                "--json and --csv stream them all)",
                err=True,
            )


class _QueryJson(_QueryOutput):
    """An array of objects, one per line, written as the rows come."""

    separator = "[\n"

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            item = {n: json_value(v) for n, v in zip(self.names, row, strict=True)}
            text = json.dumps(item, default=json_default, allow_nan=False)
            click.echo(self.separator + text, nl=False)
            self.separator = ",\n"

    def finish(self) -> None:
        click.echo("\n]" if self.count else "[]")
        super().finish()


class _QueryCsv(_QueryOutput):
    def start(self) -> None:
        import csv

        self.csv = csv.writer(sys.stdout)
        self.csv.writerow(self.names)

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.csv.writerows(
            [
                [
                    json_default(v)
                    if v is not None and not isinstance(v, str | int | float | bool)
                    else v
                    for v in row
                ]
                for row in rows
            ]
        )


class _QueryTable(_QueryOutput):
    """An aligned table of the first rows (all of them are needed to align it)."""

    def __init__(self, limit: int | None) -> None:
        super().__init__(TABLE_ROWS if limit is None else limit)
        self.rows: list[tuple[Any, ...]] = []

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows.extend(rows)

    def finish(self) -> None:
        from vibepiper.reporting.console import print_table

        print_table([dict(zip(self.names, row, strict=True)) for row in self.rows], self.names)
        if not self.more:
            click.echo(f"({self.count} row{'s' if self.count != 1 else ''})", err=True)
        super().finish()
