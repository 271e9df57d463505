"""Column-level lineage of one DuckDB SELECT: which input columns each output column is made of.

`column_lineage` parses the query with sqlglot (DuckDB dialect) once and binds its names the
way DuckDB does, so that it yields exactly one entry per output column, in DuckDB's order:
`*`, `t.*`, `* EXCLUDE/REPLACE/RENAME`, USING and NATURAL joins (the join column once),
SEMI/ANTI joins (left side only), CTEs, subqueries in FROM, scalar subqueries, set
operations (also UNION BY NAME), aliases used later in the select list, and DuckDB's
renaming of repeated column names in a subquery (`x`, `x_1`).

Only value lineage is recorded: the columns whose values flow into an output column (all
columns of an expression, including a CASE's conditions and both sides of `x IN (SELECT
y ...)`). Control lineage is left out: columns used only to filter, join, group or order
rows (WHERE, JOIN ON/USING, GROUP BY, HAVING, QUALIFY, ORDER BY, an aggregate's FILTER and
ORDER BY, a window's PARTITION BY/ORDER BY/frame, EXISTS), and the second branch of
INTERSECT/EXCEPT, which only filters the first. A USING column comes from the left table
(the right one for RIGHT JOIN, both for FULL JOIN), as DuckDB binds it.

Whatever it cannot trace for certain raises LineageError with one line: unknown or
ambiguous names, table functions, UNNEST, PIVOT, LATERAL, recursive CTEs, COLUMNS(...),
`* LIKE`, `struct.*`, qualified table names, parenthesised joins, ASOF ... USING.
Columns are only checked where they carry values: a typo in a WHERE clause goes unnoticed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp

Sources = frozenset[tuple[str, str]]
_NONE: Sources = frozenset()
_DIALECT = "duckdb"
_STAR_MODIFIERS = {"except", "except_", "replace", "rename"}  # sqlglot says except_ since v28


class LineageError(ValueError):
    """The query cannot be traced: an unknown or ambiguous name, or an unsupported construct."""


def column_lineage(
    query: str, schemas: Mapping[str, Sequence[str]]
) -> list[frozenset[tuple[str, str]]]:
    """For each output column of `query`, in output order, the (table, column) pairs of
    the input tables it is computed from (empty for a literal, count(*), ...).

    `schemas` maps each table the query reads (lowercase name) to its column names in
    order. Tables come back lowercase, columns spelled as in `schemas`. Window functions
    count only the columns of their value expression, not PARTITION BY/ORDER BY; columns
    used only in WHERE/JOIN ON are left out (see the module docstring).
    Raises LineageError for anything it cannot trace for certain.
    """
    tree = _parse(query)
    return [col.sources for col in _Binder(schemas).query(tree, {}, None)]


@dataclass(frozen=True, eq=False)  # eq=False: two same-named columns stay distinct in lists
class _Col:
    name: str | None  # lowercase; None for an unaliased expression, which we never look up
    sources: Sources


@dataclass
class _Relation:
    """What a FROM clause makes visible."""

    bindings: dict[str, list[_Col]]  # table alias -> its columns, for t.x and t.*
    visible: list[_Col]  # what * expands to and unqualified names search


@dataclass
class _Scope:
    relation: _Relation | None
    outer: _Scope | None  # the enclosing query, for correlated subqueries
    aliases: dict[str, Sources] = field(default_factory=dict)  # earlier select-list aliases


class _Binder:
    """Resolves names in a parsed query to output columns, as DuckDB's binder does."""

    def __init__(self, schemas: Mapping[str, Sequence[str]]) -> None:
        self._schemas = {name.lower(): columns for name, columns in schemas.items()}

    def query(
        self, node: exp.Expr, ctes: Mapping[str, list[_Col]], outer: _Scope | None
    ) -> list[_Col]:
        from sqlglot import exp

        with_ = _arg(node, "with")
        if with_ is not None:
            ctes = self._with(with_, ctes, outer)
        if isinstance(node, exp.Subquery):
            if isinstance(node.this, exp.Table):
                raise LineageError("parenthesised joins are not supported")
            return self.query(node.this, ctes, outer)
        if isinstance(node, exp.Select):
            return self._select(node, ctes, outer)
        if isinstance(node, exp.SetOperation):
            return self._set_operation(node, ctes, outer)
        if isinstance(node, exp.Values):
            return self._values(node)
        raise LineageError(f"cannot trace lineage through {_show(node)}")

    def _with(
        self, with_: exp.Expr, ctes: Mapping[str, list[_Col]], outer: _Scope | None
    ) -> dict[str, list[_Col]]:
        if with_.args.get("recursive"):
            raise LineageError("recursive CTEs are not supported")
        visible = dict(ctes)
        local: set[str] = set()
        for cte in with_.expressions:
            name = cte.alias.lower()
            if name in local:
                raise LineageError(f"the CTE name {name!r} is defined twice")
            local.add(name)
            # a CTE sees the ones before it, not itself: `WITH t AS (FROM t)` reads table t
            columns = self.query(cte.this, visible, outer)
            visible[name] = _dedup(_rename(columns, cte.args.get("alias"), f"CTE {name!r}"))
        return visible

    def _select(
        self, select: exp.Select, ctes: Mapping[str, list[_Col]], outer: _Scope | None
    ) -> list[_Col]:
        from sqlglot import exp

        if select.args.get("laterals"):
            raise LineageError("LATERAL VIEW is not supported")
        scope = _Scope(self._from(select, ctes, outer), outer)
        out: list[_Col] = []
        for projection in select.expressions:
            out.extend(self._projection(projection, scope, ctes))
            if isinstance(projection, exp.Alias):  # a repeated alias: DuckDB takes the latest
                scope.aliases[projection.alias.lower()] = out[-1].sources
        return out

    def _projection(
        self, node: exp.Expr, scope: _Scope, ctes: Mapping[str, list[_Col]]
    ) -> list[_Col]:
        from sqlglot import exp

        if isinstance(node, exp.Star):
            return self._star(node, scope, None, ctes)
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            if len(node.parts) != 2:
                raise LineageError(f"cannot expand {_show(node)}: name the table alone")
            return self._star(node.this, scope, node.table.lower(), ctes)
        if isinstance(node, exp.Alias):
            return [_Col(node.alias.lower(), self._sources(node.this, scope, ctes))]
        return [_Col(_auto_name(node), self._sources(node, scope, ctes))]

    def _star(
        self, star: exp.Star, scope: _Scope, table: str | None, ctes: Mapping[str, list[_Col]]
    ) -> list[_Col]:
        relation = scope.relation
        if relation is None:
            raise LineageError("SELECT * needs a FROM clause")
        if {key for key, value in star.args.items() if value} - _STAR_MODIFIERS:
            raise LineageError(f"cannot expand {_show(star)}")
        if table is None:
            columns = list(relation.visible)
        elif table in relation.bindings:
            columns = list(relation.bindings[table])
        elif any(c.name == table for c in relation.visible):
            raise LineageError(f"cannot expand {table}.*: a struct's fields are not known")
        else:
            raise LineageError(f"{_unknown('table', table, relation.bindings)} in {table}.*")
        columns = _exclude(columns, _arg(star, "except") or [], relation, table is None)
        for item in star.args.get("replace") or []:
            index = _only(columns, item.alias.lower(), "REPLACE")
            columns[index] = _Col(columns[index].name, self._sources(item.this, scope, ctes))
        for item in star.args.get("rename") or []:
            index = _only(columns, _single_name(item.this, "RENAME"), "RENAME")
            columns[index] = _Col(item.alias.lower(), columns[index].sources)
        return columns

    def _sources(
        self, node: exp.Expr, scope: _Scope | None, ctes: Mapping[str, list[_Col]]
    ) -> Sources:
        """The input columns whose values flow into `node`."""
        from sqlglot import exp

        found: set[tuple[str, str]] = set()
        stack: list[tuple[exp.Expr, frozenset[str]]] = [(node, frozenset())]
        while stack:
            item, params = stack.pop()
            if isinstance(item, exp.Column):
                found |= _resolve(item, scope, params)
            elif isinstance(item, exp.Select | exp.SetOperation | exp.Subquery | exp.Exists):
                found |= self._subquery(item, scope, ctes)
            elif isinstance(item, exp.Window):
                stack.append((item.this, params))  # not PARTITION BY, ORDER BY, frame
            elif isinstance(item, exp.WithinGroup):  # its ORDER BY is the aggregate's input
                order = item.expression
                inputs = order.expressions if isinstance(order, exp.Order) else [order]
                stack.extend((i.this if isinstance(i, exp.Ordered) else i, params) for i in inputs)
                stack.append((item.this, params))
            elif isinstance(item, exp.Lambda):
                names = {param.name.lower() for param in item.expressions}
                stack.append((item.this, params | names))
            elif not isinstance(item, exp.Ordered | exp.Where):  # an aggregate's ORDER BY, FILTER
                _refuse_multi_column(item)
                stack.extend((child, params) for child in item.iter_expressions())
        return frozenset(found)

    def _subquery(
        self, node: exp.Expr, scope: _Scope | None, ctes: Mapping[str, list[_Col]]
    ) -> Sources:
        from sqlglot import exp

        if isinstance(node, exp.Exists):
            self.query(node.this, ctes, scope)  # checked, but only row existence counts
            return _NONE
        columns = self.query(node, ctes, scope)
        if len(columns) != 1:
            raise LineageError(f"a subquery returns {len(columns)} columns, expected 1")
        return columns[0].sources

    def _from(
        self, select: exp.Select, ctes: Mapping[str, list[_Col]], outer: _Scope | None
    ) -> _Relation | None:
        from_ = _arg(select, "from")
        if from_ is None:
            return None
        # A comma binds looser than JOIN: in `a, b JOIN c USING (id)`, id comes from b and c.
        groups = [self._item(from_.this, ctes, outer)]
        for join in select.args.get("joins") or []:
            right = self._item(join.this, ctes, outer)
            if any(join.args.get(key) for key in ("on", "using", "kind", "side", "method")):
                groups[-1] = _join(groups[-1], right, join)
            else:
                groups.append(right)
        relation = groups[0]
        for group in groups[1:]:
            relation = _Relation(
                _merge_bindings(relation.bindings, group.bindings),
                relation.visible + group.visible,
            )
        return relation

    def _item(
        self, node: exp.Expr, ctes: Mapping[str, list[_Col]], outer: _Scope | None
    ) -> _Relation:
        """A table, subquery or VALUES list in FROM, under its alias."""
        from sqlglot import exp

        if node.args.get("pivots"):
            raise LineageError("PIVOT and UNPIVOT are not supported")
        if isinstance(node, exp.Table):
            name, columns = self._table(node, ctes)
        elif isinstance(node, exp.Subquery | exp.Values):
            name, columns = node.alias.lower(), self.query(node, ctes, outer)
        else:
            raise LineageError(f"cannot trace lineage through {_show(node)}")
        columns = _dedup(_rename(columns, node.args.get("alias"), repr(name or _show(node))))
        return _Relation({name: columns} if name else {}, list(columns))

    def _table(self, node: exp.Table, ctes: Mapping[str, list[_Col]]) -> tuple[str, list[_Col]]:
        from sqlglot import exp

        if not isinstance(node.this, exp.Identifier):
            raise LineageError(f"cannot trace lineage through the table function {_show(node)}")
        if node.args.get("db") or node.args.get("catalog"):
            raise LineageError(f"{_show(node)}: name tables without a schema or database")
        if node.args.get("joins"):
            raise LineageError("parenthesised joins are not supported")
        name = node.name.lower()
        if name in ctes:
            columns = ctes[name]
        elif name in self._schemas:
            columns = [_Col(c.lower(), frozenset({(name, c)})) for c in self._schemas[name]]
        else:
            raise LineageError(_unknown("table", name, [*ctes, *self._schemas]))
        return node.alias_or_name.lower(), columns

    def _set_operation(
        self, node: exp.SetOperation, ctes: Mapping[str, list[_Col]], outer: _Scope | None
    ) -> list[_Col]:
        from sqlglot import exp

        left = self.query(node.this, ctes, outer)
        right = self.query(node.expression, ctes, outer)
        operator = node.key.upper()
        if node.args.get("by_name"):
            if not isinstance(node, exp.Union):
                raise LineageError(f"{operator} BY NAME is not supported")
            return _union_by_name(left, right)
        if len(left) != len(right):
            raise LineageError(f"the {operator} branches have {len(left)} and {len(right)} columns")
        if not isinstance(node, exp.Union):
            return left  # INTERSECT/EXCEPT: the second branch only filters the first
        return [_Col(a.name, a.sources | b.sources) for a, b in zip(left, right, strict=True)]

    def _values(self, node: exp.Values) -> list[_Col]:
        from sqlglot import exp

        rows = [
            row.expressions if isinstance(row, exp.Tuple) else [row] for row in node.expressions
        ]
        if not rows or any(len(row) != len(rows[0]) for row in rows):
            raise LineageError("the VALUES rows have different numbers of columns")
        return [
            _Col(f"col{i}", frozenset().union(*(self._sources(row[i], None, {}) for row in rows)))
            for i in range(len(rows[0]))
        ]


def _resolve(column: exp.Column, scope: _Scope | None, params: frozenset[str]) -> Sources:
    """The sources of a column reference, searched from the innermost query outwards."""
    if column.is_star:
        raise LineageError(
            f"cannot trace a star inside an expression: {_show(column.parent or column)}"
        )
    parts = [part.name.lower() for part in column.parts]
    if parts[0] in params:  # a lambda's parameter
        return _NONE
    current = scope
    while current is not None:
        found = _lookup(current, parts)
        if found is not None:
            return found
        current = current.outer
    visible = scope.relation.visible if scope and scope.relation else []
    names = [c.name for c in visible if c.name]
    raise LineageError(_unknown("column", column.sql(dialect=_DIALECT), names))


def _lookup(scope: _Scope, parts: list[str]) -> Sources | None:
    """`t.x` (table t, column x), else `x.f...` (column x, struct field f), else an alias."""
    relation = scope.relation
    if relation is not None:
        if len(parts) > 1 and parts[0] in relation.bindings:
            found = _find(relation.bindings[parts[0]], parts[1], relation)
            if found is not None:
                return found.sources
        found = _find(relation.visible, parts[0], relation)
        if found is not None:
            return found.sources
        if len(parts) == 1 and parts[0] in relation.bindings:  # `SELECT t FROM t`: the row
            return frozenset().union(*(c.sources for c in relation.bindings[parts[0]]))
    return scope.aliases.get(parts[0])


def _find(columns: list[_Col], name: str, relation: _Relation) -> _Col | None:
    matches = [c for c in columns if c.name == name]
    if len(matches) > 1:
        tables = [t for t, cols in relation.bindings.items() if any(c.name == name for c in cols)]
        hint = " or ".join(f"{t}.{name}" for t in tables) or "an alias"
        raise LineageError(f"ambiguous column {name!r}: it is in more than one table; use {hint}")
    return matches[0] if matches else None


def _join(left: _Relation, right: _Relation, join: exp.Join) -> _Relation:
    method, kind, side = join.method.upper(), join.kind.upper(), join.side.upper()
    using = [_single_name(item, "USING") for item in join.args.get("using") or []]
    if method not in ("", "NATURAL", "POSITIONAL", "ASOF") or (method == "ASOF" and using):
        raise LineageError(f"{method} {'USING ' if using else ''}joins are not supported")
    if join.args.get("pivots"):
        raise LineageError("PIVOT and UNPIVOT are not supported")
    if kind in ("SEMI", "ANTI"):
        return left  # the right side only filters rows; its columns are not visible
    if method == "NATURAL":
        right_names = {c.name for c in right.visible}
        using = [c.name for c in left.visible if c.name and c.name in right_names]
        if not using:
            raise LineageError("NATURAL JOIN finds no column to join on")
    bindings = _merge_bindings(left.bindings, right.bindings)
    left_columns, right_columns = list(left.visible), list(right.visible)
    for name in dict.fromkeys(using):
        a, b = _find(left_columns, name, left), _find(right_columns, name, right)
        if a is None or b is None:
            side_named = "left" if a is None else "right"
            raise LineageError(f"the USING column {name!r} is not on the {side_named} side")
        sources = (
            b.sources if side == "RIGHT" else a.sources | b.sources if side == "FULL" else a.sources
        )
        left_columns[left_columns.index(a)] = _Col(name, sources)
        right_columns = [c for c in right_columns if c is not b]
    return _Relation(bindings, left_columns + right_columns)


def _merge_bindings(
    left: dict[str, list[_Col]], right: dict[str, list[_Col]]
) -> dict[str, list[_Col]]:
    clash = sorted(left.keys() & right.keys())
    if clash:
        raise LineageError(f"the table name {clash[0]!r} appears twice in FROM; give one an alias")
    return {**left, **right}


def _exclude(
    columns: list[_Col], items: Iterable[exp.Expr], relation: _Relation, qualified: bool
) -> list[_Col]:
    """`columns` without the ones `* EXCLUDE (...)` names (DuckDB drops every match)."""
    for item in items:
        parts = [part.name.lower() for part in getattr(item, "parts", [item])]
        if len(parts) == 1:
            hit = [c for c in columns if c.name == parts[0]]
        elif len(parts) == 2 and qualified and parts[0] in relation.bindings:
            hit = [c for c in relation.bindings[parts[0]] if c.name == parts[1]]
            if any(c not in columns for c in hit):  # DuckDB's rule here is odd: refuse it
                raise LineageError(f"cannot EXCLUDE {'.'.join(parts)}, a USING join column")
        else:
            raise LineageError(f"cannot EXCLUDE {_show(item)}")
        if not hit:
            raise LineageError(f"the EXCLUDE column {'.'.join(parts)!r} is not in the FROM clause")
        columns = [c for c in columns if c not in hit]
    return columns


def _only(columns: list[_Col], name: str, clause: str) -> int:
    """The position of the one column called `name`, for REPLACE and RENAME."""
    matches = [i for i, c in enumerate(columns) if c.name == name]
    if not matches:
        raise LineageError(f"the {clause} column {name!r} is not in the FROM clause")
    if len(matches) > 1:
        raise LineageError(
            f"{clause} of {name!r}, which is in more than one table, is not supported"
        )
    return matches[0]


def _union_by_name(left: list[_Col], right: list[_Col]) -> list[_Col]:
    merged: dict[str, Sources] = {}
    for branch in (left, right):
        names = [c.name for c in branch]
        if None in names or len(set(names)) != len(names):
            raise LineageError("UNION BY NAME needs distinct, explicit column names in each branch")
        for c in branch:
            merged[str(c.name)] = merged.get(str(c.name), _NONE) | c.sources
    return [_Col(name, sources) for name, sources in merged.items()]


def _rename(columns: list[_Col], alias: exp.TableAlias | None, what: str) -> list[_Col]:
    """Apply an alias's column list, `t(a, b)`, which renames the first columns."""
    names = [c.name.lower() for c in alias.columns] if alias is not None else []
    if len(names) > len(columns):
        raise LineageError(f"{what} has {len(columns)} columns but {len(names)} column aliases")
    renamed = [_Col(name, column.sources) for name, column in zip(names, columns, strict=False)]
    return renamed + columns[len(names) :]


def _dedup(columns: list[_Col]) -> list[_Col]:
    """Fresh columns, renamed as DuckDB names a subquery's repeated columns: x, x_1, x_2."""
    seen: dict[str, int] = {}
    out = []
    for column in columns:
        name = column.name
        if name is not None and name in seen:
            base = name
            name = f"{base}_{seen[base]}"
            while name in seen:
                seen[base] += 1
                name = f"{base}_{seen[base]}"
        if name is not None:
            seen[name] = seen.get(name, 0) + 1
        out.append(_Col(name, column.sources))
    return out


def _refuse_multi_column(node: exp.Expr) -> None:
    """Refuse what DuckDB may expand into several columns, which we cannot count."""
    from sqlglot import exp

    if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
        raise LineageError(
            f"cannot trace a star inside an expression: {_show(node.parent or node)}"
        )
    multi = (exp.Columns, exp.PositionalColumn, exp.Explode, exp.Unnest)
    name = node.name.lower() if isinstance(node, exp.Anonymous) else ""
    if isinstance(node, multi) or name in ("unnest", "unpack", "columns"):
        raise LineageError(f"cannot trace lineage through {_show(node)}")


def _auto_name(node: exp.Expr) -> str | None:
    """The name DuckDB gives an unaliased column or struct field; None for other expressions."""
    from sqlglot import exp

    while isinstance(node, exp.Paren):
        node = node.this
    return node.name.lower() if isinstance(node, exp.Column | exp.Dot) else None


def _single_name(node: exp.Expr, clause: str) -> str:
    from sqlglot import exp

    if (isinstance(node, exp.Column) and len(node.parts) == 1) or isinstance(node, exp.Identifier):
        return node.name.lower()
    raise LineageError(f"cannot trace {clause} {_show(node)}: name the column alone")


def _arg(node: exp.Expr, name: str) -> exp.Expr | None:
    """An argument sqlglot renamed from `from` to `from_` (and `with`, `except`)."""
    found = node.args.get(f"{name}_")
    return found if found is not None else node.args.get(name)


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"unknown {kind} {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _show(node: exp.Expr) -> str:
    text = " ".join(node.sql(dialect=_DIALECT).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _parse(query: str) -> exp.Expr:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, SqlglotError

    try:
        statements = [s for s in sqlglot.parse(query, read=_DIALECT) if s is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        detail = str(first.get("description", exc)).splitlines()[0].split(" <Token")[0]
        if first:  # sqlglot's description may end in a token's repr; say where instead
            detail += f" (line {first.get('line')}, column {first.get('col')})"
        raise LineageError(f"the query does not parse: {detail}") from exc
    except (SqlglotError, RecursionError) as exc:
        detail = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise LineageError(f"the query does not parse: {detail}") from exc
    if len(statements) != 1:
        raise LineageError(f"expected one SELECT statement, got {len(statements)}")
    if not isinstance(statements[0], exp.Query | exp.Values):
        raise LineageError(f"expected a SELECT statement, got {statements[0].key.upper()}")
    return statements[0]
