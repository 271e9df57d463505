"""Column lineage of SQL assets: each output column's input columns, checked against DuckDB.

Every query that is traced is also run in an in-memory DuckDB over the same tables, and the
lineage must have one entry per column DuckDB returns: the caller matches them by position.
Queries refused with LineageError either fail in DuckDB too (unknown, ambiguous) or use a
construct whose lineage or column count we cannot know for certain.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibepiper.definitions.sql_lineage import LineageError, column_lineage

SCHEMAS: dict[str, list[str]] = {
    "a": ["id", "x", "Y"],  # "Y": names come back spelled as stored
    "b": ["id", "x", "z"],
    "c": ["id", "w"],
    "s": ["id", "st", "l"],
}
TABLES_DDL = [
    'create table a (id integer, x integer, "Y" integer)',
    "create table b (id integer, x integer, z integer)",
    "create table c (id integer, w integer)",
    "create table s (id integer, st struct(f integer, g struct(h integer)), l integer[])",
]


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    for ddl in TABLES_DDL:
        connection.execute(ddl)
    yield connection
    connection.close()


def pairs(spec: str) -> frozenset[tuple[str, str]]:
    """'a.x b.z' -> {('a', 'x'), ('b', 'z')}; '' -> the empty set."""
    found = set()
    for item in spec.split():
        table, _, column = item.partition(".")
        found.add((table, column))
    return frozenset(found)


def traced(
    con: duckdb.DuckDBPyConnection, query: str, schemas: dict[str, list[str]] = SCHEMAS
) -> list[frozenset[tuple[str, str]]]:
    """The lineage of `query`, after checking it has one entry per column DuckDB returns."""
    result = column_lineage(query, schemas)
    duck = con.execute(query)
    assert len(result) == len(duck.description), [d[0] for d in duck.description]
    return result


CASES = {
    # stars
    "star": ("select * from a", ["a.id", "a.x", "a.Y"]),
    "from first": ("from a", ["a.id", "a.x", "a.Y"]),
    "from first, select": ("from a select x", ["a.x"]),
    "table star": (
        "select b.*, a.x from a join b on a.id = b.id",
        ["b.id", "b.x", "b.z", "a.x"],
    ),
    "star over a cross join keeps both x": (
        "select * from a, b",
        ["a.id", "a.x", "a.Y", "b.id", "b.x", "b.z"],
    ),
    "exclude": ("select * exclude (x) from a", ["a.id", "a.Y"]),
    "exclude drops every match": ("select * exclude (x) from a, b", ["a.id", "a.Y", "b.id", "b.z"]),
    "qualified exclude": (
        "select * exclude (b.x) from a join b on a.id = b.id",
        ["a.id", "a.x", "a.Y", "b.id", "b.z"],
    ),
    "replace": ("select * replace (x + id as x) from a", ["a.id", "a.x a.id", "a.Y"]),
    "rename": ("select * rename (x as xx) from a", ["a.id", "a.x", "a.Y"]),
    "table star with exclude": ("select t.* exclude (x) from a as t", ["a.id", "a.Y"]),
    "star over a CTE": ("with t as (select x, y from a) select * from t", ["a.x", "a.Y"]),
    "star inside a CTE": ("with t as (select * from b) select z, id from t", ["b.z", "b.id"]),
    "star over a subquery": ("select * from (select y, x from a) q", ["a.Y", "a.x"]),
    "table alias with column names": ("select * from a as u(p, q)", ["a.id", "a.x", "a.Y"]),
    "renamed column by its new name": ("select q from a as u(p, q)", ["a.x"]),
    # USING and NATURAL: the join column once, from the side DuckDB binds
    "using": (
        "select * from a join b using (id)",
        ["a.id", "a.x", "a.Y", "b.x", "b.z"],
    ),
    "left using": ("select * from a left join b using (id)", ["a.id", "a.x", "a.Y", "b.x", "b.z"]),
    "right using": (
        "select * from a right join b using (id)",
        ["b.id", "a.x", "a.Y", "b.x", "b.z"],
    ),
    "full using": (
        "select * from a full join b using (id)",
        ["a.id b.id", "a.x", "a.Y", "b.x", "b.z"],
    ),
    "using column named alone": ("select id from a full outer join b using (id)", ["a.id b.id"]),
    "using column named by table": ("select b.id from a join b using (id)", ["b.id"]),
    "using twice": (
        "select * from a join b using (id) join c using (id)",
        ["a.id", "a.x", "a.Y", "b.x", "b.z", "c.w"],
    ),
    "natural": ("select * from a natural join b", ["a.id", "a.x", "a.Y", "b.z"]),
    "natural, other way round": ("select * from b natural join a", ["b.id", "b.x", "b.z", "a.Y"]),
    "exclude the using column": (
        "select * exclude (id) from a join b using (id)",
        ["a.x", "a.Y", "b.x", "b.z"],
    ),
    "table star keeps its using column": (
        "select b.* from a join b using (id)",
        ["b.id", "b.x", "b.z"],
    ),
    "a comma binds looser than join": (
        "select * from a, c join b using (id)",
        ["a.id", "a.x", "a.Y", "c.id", "c.w", "b.x", "b.z"],
    ),
    "semi join shows the left side": (
        "select * from a semi join b on a.id = b.id",
        ["a.id", "a.x", "a.Y"],
    ),
    "anti join": ("select * from a anti join b using (id)", ["a.id", "a.x", "a.Y"]),
    "positional join": ("select * from a positional join c", ["a.id", "a.x", "a.Y", "c.id", "c.w"]),
    # repeated names in a subquery become x, x_1 as in DuckDB
    "star over a subquery with repeated names": (
        "select * from (select * from a, b) q",
        ["a.id", "a.x", "a.Y", "b.id", "b.x", "b.z"],
    ),
    "a renamed repeat by its new name": ("select q.x_1 from (select * from a, b) q", ["b.x"]),
    "repeats around an existing name": (
        "select t.v_2, t.v from (select a.x as v, a.y as v_1, b.z as v from a, b) t",
        ["b.z", "a.x"],
    ),
    # CTEs
    "chained CTEs": (
        "with t1 as (select x + y as s, id from a), t2 as (select s * 2 as d, id from t1) "
        "select d, id from t2",
        ["a.x a.Y", "a.id"],
    ),
    "nested CTE": (
        "with t as (select x from a) "
        "select * from (with u as (select x + 1 as v from t) select v from u) q",
        ["a.x"],
    ),
    "CTE named like a table hides it": (
        "with a as (select z as x from b) select x from a",
        ["b.z"],
    ),
    "CTE reading the table it hides": (
        "with a as (select * from a) select * from a",
        ["a.id", "a.x", "a.Y"],
    ),
    "CTE column list": ("with t(p) as (select x, y from a) select p, y from t", ["a.x", "a.Y"]),
    "CTE used twice": (
        "with t as (select id, x from a) select t1.x, t2.x + t1.id from t t1 join t t2 using (id)",
        ["a.x", "a.x a.id"],
    ),
    # joins, aliases, expressions
    "aliases": (
        "select u.x as ux, v.z from a as u join b as v on u.id = v.id",
        ["a.x", "b.z"],
    ),
    "where and on are control lineage": (
        "select a.x from a join b on a.id = b.id where b.z > 0 and a.y < 3",
        ["a.x"],
    ),
    "arithmetic": ("select a.x + b.x * b.z as s from a join b on a.id = b.id", ["a.x b.x b.z"]),
    "case, coalesce, casts": (
        "select case when id > 0 then x else y end, coalesce(x, y), cast(x as bigint), "
        "x::varchar, try_cast(y as double) from a",
        ["a.id a.x a.Y", "a.x a.Y", "a.x", "a.x", "a.Y"],
    ),
    "literals and count(*)": (
        "select 1, 'text', null, count(*), current_date, x from a group by x",
        ["", "", "", "", "", "a.x"],
    ),
    "struct fields": ("select st.f, s.st.g.h, st['f'], st, (st).g from s", ["s.st"] * 5),
    "a table's row as a struct": ("select a from a", ["a.id a.x a.Y"]),
    "a subquery's row as a struct": ("select t from (select x, y from a) t", ["a.x a.Y"]),
    "case-insensitive names": ('SELECT A.X, "Y", y FROM A', ["a.x", "a.Y", "a.Y"]),
    "lambda parameters are not columns": (
        "select list_transform(l, lambda q: q + id) from s",
        ["s.l s.id"],
    ),
    "an alias used later in the select list": (
        "select x + 1 as q, q * y as r from a",
        ["a.x", "a.x a.Y"],
    ),
    "a table column beats an alias": ("select x + 1 as id, id from a", ["a.x", "a.id"]),
    "a repeated alias: the latest counts": (
        "select x as q, y as q, q + 1 from a",
        ["a.x", "a.Y", "a.Y"],
    ),
    "an outer alias in a scalar subquery": (
        "select x + 1 as q, (select q + z from b) from a",
        ["a.x", "a.x b.z"],
    ),
    "ordered-set aggregates read their ORDER BY": (
        "select percentile_cont(0.5) within group (order by x), "
        "mode() within group (order by y desc) from a",
        ["a.x", "a.Y"],
    ),
    # aggregates and windows: the value only
    "aggregates": (
        "select id, sum(x), count(distinct y), max(x) filter (where y > 0), "
        "string_agg(cast(x as varchar), ',' order by y) from a group by id",
        ["a.id", "a.x", "a.Y", "a.x", "a.x"],
    ),
    "group by all": ("select id, sum(x + y) as t from a group by all", ["a.id", "a.x a.Y"]),
    "windows": (
        "select sum(x) over (partition by id order by y), row_number() over (order by x), "
        "lag(y) over w from a window w as (order by id)",
        ["a.x", "", "a.Y"],
    ),
    # subqueries in the select list
    "scalar subquery": ("select (select max(z) from b) as m, x from a", ["b.z", "a.x"]),
    "correlated subquery": (
        "select (select max(b.z) + a.y from b where b.id = a.id) from a",
        ["b.z a.Y"],
    ),
    "in a subquery": ("select x in (select z from b) from a", ["a.x b.z"]),
    "exists is control lineage": ("select exists (select z from b where b.id = a.id) from a", [""]),
    "values": ("select * from (values (1, 2)) v(p)", ["", ""]),
    # set operations
    "union": ("select x from a union select z from b", ["a.x b.z"]),
    "three branches": (
        "select x, y from a union all select z, id from b union select w, id from c",
        ["a.x b.z c.w", "a.Y b.id c.id"],
    ),
    "union in a CTE under a star": (
        "with u as (select id, x from a union all select id, z from b) select * from u",
        ["a.id b.id", "a.x b.z"],
    ),
    "union of stars": (
        "select * from a union select * from b",
        ["a.id b.id", "a.x b.x", "a.Y b.z"],
    ),
    "union by name": (
        "select x as q, id from a union all by name select id, z as r from b",
        ["a.x", "a.id b.id", "b.z"],
    ),
    "intersect keeps the first branch": ("select id from a intersect select id from b", ["a.id"]),
    "except keeps the first branch": ("select id from a except select id from b", ["a.id"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_lineage(con: duckdb.DuckDBPyConnection, name: str) -> None:
    query, expected = CASES[name]
    assert traced(con, query) == [pairs(spec) for spec in expected]


def test_schema_spelling_and_table_case(con: duckdb.DuckDBPyConnection) -> None:
    con.execute('create table "Mixed" ("CustomerID" integer, "Total Amount" double)')
    schemas = {"mixed": ["CustomerID", "Total Amount"]}
    query = 'select customerid, "total amount" * 2 as t from MIXED'
    assert traced(con, query, schemas) == [
        pairs("mixed.CustomerID"),
        frozenset({("mixed", "Total Amount")}),
    ]


# --- what DuckDB rejects too ---------------------------------------------------------------

REJECTED = {
    "unknown table": ("select * from nope", "unknown table 'nope'"),
    "unknown table, close to a known one": ("select * from bb", "did you mean 'b'?"),
    "unknown column": ("select q from a", "unknown column 'q'"),
    "unknown qualified column": ("select a.z from a", "unknown column 'a.z'"),
    "ambiguous column": ("select x from a join b on a.id = b.id", "ambiguous column 'x'"),
    "ambiguous join column": ("select id from a, b", "ambiguous column 'id'"),
    "table renamed by its alias": ("select a.x from a as u", "unknown column 'a.x'"),
    "later alias": ("select r, x + 1 as r from a", "unknown column 'r'"),
    "semi join hides the right side": (
        "select b.z from a semi join b on a.id = b.id",
        "unknown column 'b.z'",
    ),
    "exclude of an unknown column": ("select * exclude (nope) from a", "EXCLUDE column 'nope'"),
    "replace of an unknown column": ("select * replace (1 as nope) from a", "REPLACE column"),
    "star without from": ("select *", "needs a FROM clause"),
    "union of different widths": ("select 1 union select 1, 2", "1 and 2 columns"),
    "scalar subquery of two columns": ("select (select 1, 2)", "returns 2 columns"),
    "too many column aliases": ("select * from a as u(p, q, r, t)", "3 columns but 4"),
    "table twice without alias": ("select * from a, a", "appears twice"),
    "using column missing on one side": ("select * from a join c using (x)", "'x'"),
    "parse error": ("select from from", "does not parse"),
    "unterminated string": ("select 'abc", "does not parse"),
}


@pytest.mark.parametrize("name", list(REJECTED))
def test_rejected_like_duckdb(con: duckdb.DuckDBPyConnection, name: str) -> None:
    query, fragment = REJECTED[name]
    with pytest.raises(duckdb.Error):
        con.execute(query)
    with pytest.raises(LineageError) as caught:
        column_lineage(query, SCHEMAS)
    message = str(caught.value)
    assert fragment in message and "\n" not in message


# --- what DuckDB runs but we refuse rather than guess -----------------------------------

REFUSED = {
    "table function": "select * from range(3) r",
    "file as a table": "select * from 'data.csv'",
    "qualified table": "select * from main.a",
    "unnest in the select list (a struct becomes columns)": "select unnest(l) from s",
    "unnest in from": "select * from s, unnest(s.l) u(v)",
    "columns(...)": "select columns('i.*') from a",
    "star like": "select * like 'i%' from a",
    "star in a function": "select struct_pack(*) from a",
    "struct star": "select st.* from s",
    "pivot": "select * from a pivot (sum(x) for id in (1, 2))",
    "lateral subquery": "select * from a, (select a.x + 1 as k) t",
    "recursive CTE": "with recursive t(n) as (select 1 union all select n + 1 from t where n < 3) "
    "select * from t",
    "parenthesised join": "select * from a join (b join c using (id)) using (id)",
    "exclude a using column by table": "select * exclude (a.id) from a join b using (id)",
    "replace of a repeated name": "select * replace (1 as x) from a, b",
    "asof using": "select * from a asof join b using (id, x)",
    "positional column": "select #1 from a",
    "two statements": "select 1; select 2",
    "not a select": "insert into c values (1, 2)",
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused(name: str) -> None:
    with pytest.raises(LineageError) as caught:
        column_lineage(REFUSED[name], SCHEMAS)
    assert "\n" not in str(caught.value) and str(caught.value)


def test_lineage_error_is_a_value_error() -> None:
    assert issubclass(LineageError, ValueError)


# --- random projections -------------------------------------------------------------------

COLUMNS_A = ["id", "a0", "a1", "a2", "a3"]
COLUMNS_B = ["id", "b0", "b1", "b2", "b3"]
RANDOM_SCHEMAS = {"ta": COLUMNS_A, "tb": COLUMNS_B}


@pytest.fixture(scope="module")
def random_con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    for table, columns in RANDOM_SCHEMAS.items():
        connection.execute(f"create table {table} ({', '.join(c + ' integer' for c in columns)})")
    yield connection
    connection.close()


def _reference(table: str, column: str, qualify: bool) -> str:
    """A column reference: `id` is in both tables, so it is always qualified."""
    return f"{table}.{column}" if qualify or column == "id" else column


@st.composite
def projections(draw: st.DrawFn) -> tuple[str, list[frozenset[tuple[str, str]]]]:
    """A random SELECT over ta JOIN tb and the lineage it must have."""
    every = [("ta", c) for c in COLUMNS_A] + [("tb", c) for c in COLUMNS_B]
    count = draw(st.integers(1, 6))
    aliases = draw(
        st.lists(
            st.text("abcdefghij", min_size=1, max_size=6),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    items, expected = [], []
    for alias in aliases:
        used = draw(st.lists(st.sampled_from(every), min_size=1, max_size=3))
        terms = [_reference(t, c, draw(st.booleans())) for t, c in used]
        if draw(st.booleans()):
            terms.append(str(draw(st.integers(0, 9))))
        operators = [draw(st.sampled_from([" + ", " - ", " * "])) for _ in terms[1:]]
        text = terms[0] + "".join(op + term for op, term in zip(operators, terms[1:], strict=True))
        items.append(f'{text} as "c_{alias}"')
        expected.append(frozenset(used))
    body = f"select {', '.join(items)} from ta join tb on ta.id = tb.id"
    if not draw(st.booleans()):
        return body, expected
    order = draw(st.permutations(range(count)))
    picked = ", ".join(f'"c_{aliases[i]}"' for i in order)
    return f"with t as ({body}) select {picked} from t", [expected[i] for i in order]


@settings(max_examples=150, deadline=None)
@given(case=projections())
def test_random_projections(
    random_con: duckdb.DuckDBPyConnection, case: tuple[str, list[frozenset[tuple[str, str]]]]
) -> None:
    query, expected = case
    assert traced(random_con, query, RANDOM_SCHEMAS) == expected


# --- a wide query ---------------------------------------------------------------------------


def wide_query(
    outputs: int = 200, width: int = 80, seed: int = 7
) -> tuple[str, dict[str, list[str]], list[frozenset[tuple[str, str]]]]:
    """A SELECT of `outputs` expressions over a 3-table join through CTEs, and its lineage."""
    rnd = random.Random(seed)
    schemas = {
        t: [f"{t}_c{i}" for i in range(width)] + ["id"] for t in ("orders", "customers", "items")
    }
    customers = ", ".join(schemas["customers"][:-1])
    ctes = (
        "with o as (select * from orders where orders_c1 > 0), "
        f"c as (select id, {customers} from customers), "
        "j as (select o.*, c.* exclude (id), i.* exclude (id) "
        "from o join c using (id) join items i using (id)) "
    )
    every = [(t, c) for t, columns in schemas.items() for c in columns if c != "id"]
    items, expected = [], []
    for k in range(outputs):
        used = rnd.sample(every, rnd.randint(1, 3))
        text = rnd.choice([" + ", " * ", " - "]).join(c for _, c in used)
        items.append(f"coalesce({text}, 0) as out_{k}" if k % 5 == 0 else f"{text} as out_{k}")
        expected.append(frozenset(used))
    return ctes + f"select {', '.join(items)} from j", schemas, expected


def test_two_hundred_columns() -> None:
    query, schemas, expected = wide_query()
    connection = duckdb.connect()
    for table, columns in schemas.items():
        connection.execute(f"create table {table} ({', '.join(c + ' integer' for c in columns)})")
    result = traced(connection, query, schemas)
    assert len(result) == 200
    assert result == expected


def test_import_leaves_sqlglot_alone() -> None:
    code = "import sys, vibepiper.definitions.sql_lineage; print('sqlglot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
