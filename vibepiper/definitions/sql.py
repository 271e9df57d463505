"""SQL assets (SPEC §10): one SELECT, parsed by sqlglot in DuckDB's dialect.

A query is parsed once, where it is defined, for three things: that it is one SELECT
(or WITH ... SELECT, or a UNION of them) and nothing else; the tables it reads, which are
its inputs (common table expressions and subqueries left out, as sqlglot's scopes tell
them apart); and its normal form, which is its code version, so that formatting, case
and comments do not count. A table function (`read_csv(...)`, `range(...)`), a file
named as a table (`FROM 'data.csv'`) or a qualified name (`main.orders`) is a definition
error: a SQL asset reads assets, and only through their names. DuckDB's own sandbox
(`vibepiper.execution.sql_run`) refuses the rest when the query runs.

sqlglot is imported here, when a SQL asset is defined: `vibepiper --help` never pays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from vibepiper.definitions.asset import NAME_RE
from vibepiper.errors import DefinitionError

DIALECT = "duckdb"


@dataclass(frozen=True)
class ParsedQuery:
    normalized: str  # the code version's text: one line, canonical case, no comments
    tables: tuple[str, ...]  # the tables it reads, lowercase, in order of appearance


def parse_query(owner: str, text: object) -> ParsedQuery:
    """The parsed form of `text`, or a DefinitionError naming `owner` (e.g. "asset
    'daily_revenue' (sql/daily_revenue.sql)") and what to change."""
    if not isinstance(text, str) or not text.strip():
        raise DefinitionError(
            f"{owner}: the query is {'empty' if isinstance(text, str) else repr(text)[:60]}",
            "give one SELECT statement, e.g. 'select * from orders'",
        )
    found = _parse(text)
    if isinstance(found, str):
        raise DefinitionError(f"{owner}: {found}", _SELECT_ONLY)
    return found


_SELECT_ONLY = (
    "a SQL asset is one SELECT (or WITH ... SELECT) that reads assets by name; "
    "files, table functions and other statements are not allowed"
)


@lru_cache(maxsize=4096)
def _parse(text: str) -> ParsedQuery | str:
    """The parsed query, or what is wrong with it (cached: checks and assets share it)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [s for s in sqlglot.parse(text, read=DIALECT) if s is not None]
    except SqlglotError as exc:
        return f"the query does not parse: {_first(exc)}"
    if len(statements) != 1:
        return f"the query holds {len(statements)} statements, not one SELECT"
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        return f"the query is a {_kind(tree)} statement, not a SELECT"
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.Copy | exp.Insert | exp.Create | exp.Drop):
            return f"the query holds a {_kind(node)} statement"
    tables = _tables(tree)
    if isinstance(tables, str):
        return tables
    normalized = tree.sql(dialect=DIALECT, comments=False, normalize=True)
    return ParsedQuery(normalized, tables)


def _tables(tree: Any) -> tuple[str, ...] | str:
    """The tables `tree` reads (not its CTEs nor subqueries), or what is wrong."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

    names: list[str] = []
    for scope in traverse_scope(tree):
        for source in scope.sources.values():
            if not isinstance(source, exp.Table):
                continue
            if not isinstance(source.this, exp.Identifier):
                shown = source.this.sql(dialect=DIALECT)[:60]
                return f"the query reads {shown}, which is a table function, not an asset"
            if source.args.get("db") or source.args.get("catalog"):
                shown = source.sql(dialect=DIALECT)[:60]
                return f"the query reads {shown}: name assets without a schema or database"
            name = source.name.lower()
            if not NAME_RE.fullmatch(name):
                return f"the query reads '{source.name[:60]}', which is no asset's name"
            names.append(name)
    for node in tree.find_all(exp.Table):  # what scopes do not reach (e.g. a lateral)
        if not isinstance(node.this, exp.Identifier):
            shown = node.this.sql(dialect=DIALECT)[:60]
            return f"the query reads {shown}, which is a table function, not an asset"
    return tuple(dict.fromkeys(names))


def normal_form(text: str) -> str:
    """The query's normal form, or `text` itself if it does not parse."""
    found = _parse(text)
    return found.normalized if isinstance(found, ParsedQuery) else text


def _kind(node: Any) -> str:
    return str(node.key).upper()


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
