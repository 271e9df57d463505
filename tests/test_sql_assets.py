"""SQL assets (SPEC §10): defined in Python or in `.sql` files, computed by DuckDB from the
inputs' Parquet files into the store, checked as SQL, sandboxed, with column lineage."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import run_cli
from vibepiper import Project, expect, sql_asset
from vibepiper.errors import DefinitionError, ProjectLoadError

ASSETS = """
import pandas as pd
from vibepiper import asset, check, expect, sql_asset

@asset
def orders() -> pd.DataFrame:
    return pd.DataFrame({
        "order_id": [1, 2, 3, 4, 5],
        "customer_id": [1, 1, 2, 3, 3],
        "amount": [10.0, 5.5, 3.0, 7.25, 1.0],
    })

@asset
def customers() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [1, 2, 3], "name": ["ann", "bob", "cy"]})

revenue = sql_asset(
    "revenue",
    '''
    -- revenue per customer
    select c.name, sum(o.amount) as revenue, count(*) as orders
    from orders o join customers c using (customer_id)
    group by c.name
    ''',
    checks=[expect.not_null("name"), expect.unique("name"), expect.row_count(min=1)],
)

@asset
def report(revenue: pd.DataFrame) -> pd.DataFrame:
    return revenue.sort_values("name").reset_index(drop=True)
"""


def write(root: Path, assets: str = ASSETS, sql: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    tool = '[tool.vibepiper]\nmodules = ["assets"]\n'
    if sql is not None:
        tool += 'sql_paths = ["sql"]\n'
        for rel, text in sql.items():
            path = root / "sql" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
    (root / "pyproject.toml").write_text(tool)
    (root / "assets.py").write_text(textwrap.dedent(assets))
    return root


def read(root: Path, name: str) -> pd.DataFrame:
    return Project(root).read(name)


# -- computing -------------------------------------------------------------------------


def test_a_sql_asset_is_computed_by_duckdb_between_python_assets(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    report = read(root, "report")
    assert report.to_dict("list") == {
        "name": ["ann", "bob", "cy"],
        "revenue": [15.5, 3.0, 8.25],
        "orders": [2, 1, 2],
    }
    # the same answer as DuckDB's own over the published inputs
    project = Project(root)
    con = duckdb.connect()
    con.register("orders", project.read("orders"))
    con.register("customers", project.read("customers"))
    expected = con.sql(
        "select c.name, sum(o.amount) as revenue, count(*) as orders from orders o "
        "join customers c using (customer_id) group by c.name order by 1"
    ).df()
    got = project.read("revenue").sort_values("name").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    checks = {
        r["check_name"]: r["passed"]
        for r in json.loads(run_cli(root, "history", "revenue", "--json").stdout)[0]["checks"]
    }
    assert checks == {"not_null_name": True, "unique_name": True, "row_count": True}


def test_formatting_and_comments_do_not_count_but_a_change_does(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    assert run_cli(root, "materialize").returncode == 0
    source = (root / "assets.py").read_text()
    reformatted = source.replace(
        "select c.name, sum(o.amount) as revenue, count(*) as orders",
        "SELECT   c.name,\n  SUM(o.amount) AS revenue, -- a comment\n  COUNT(*) AS orders",
    )
    (root / "assets.py").write_text(reformatted)
    status = json.loads(run_cli(root, "status", "--json").stdout)
    assert all(row["fresh"] for row in status), status
    (root / "assets.py").write_text(reformatted.replace("SUM(o.amount)", "MAX(o.amount)"))
    stale = {
        r["name"] for r in json.loads(run_cli(root, "status", "--json").stdout) if not r["fresh"]
    }
    assert stale == {"revenue", "report"}


def test_same_data_in_another_order_keeps_downstream_fresh(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    assert run_cli(root, "materialize").returncode == 0
    before = read(root, "revenue")
    # another query giving the same rows in another order: early cutoff keeps report fresh
    source = (root / "assets.py").read_text()
    (root / "assets.py").write_text(
        source.replace("group by c.name", "group by c.name order by c.name desc")
    )
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if "]" in line}
    assert "succeeded" in lines["revenue"] and "skipped" in lines["report"], done.stdout
    assert sorted(read(root, "revenue")["name"]) == sorted(before["name"])


def test_sql_files_are_assets_named_by_their_stem(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        sql={
            "staging/big_orders.sql": """
                -- Orders of 5 or more.
                select order_id, amount * 2 as doubled from orders where amount >= 5
            """,
            "top.sql": "select max(doubled) as top from big_orders",
        },
    )
    listed = {r["name"]: r for r in json.loads(run_cli(root, "list", "--json").stdout)}
    assert listed["big_orders"]["group"] == "staging"
    assert listed["big_orders"]["description"] == "Orders of 5 or more."
    assert listed["top"]["deps"] == ["big_orders"]
    assert run_cli(root, "materialize").returncode == 0
    assert read(root, "top")["top"].tolist() == [20.0]
    # a new .sql file is a new asset at once (the snapshot does not stand in for it)
    (root / "sql" / "more.sql").write_text("select count(*) as n from top")
    names = [r["name"] for r in json.loads(run_cli(root, "list", "--json").stdout)]
    assert "more" in names
    # an edited .sql file makes its asset stale
    (root / "sql" / "top.sql").write_text("select min(doubled) as top from big_orders")
    stale = {
        r["name"] for r in json.loads(run_cli(root, "status", "--json").stdout) if not r["fresh"]
    }
    assert stale == {"top", "more"}


def test_a_failing_check_blocks_downstream_and_keeps_the_previous_version(
    tmp_path: Path,
) -> None:
    root = write(tmp_path / "p")
    assert run_cli(root, "materialize").returncode == 0
    before = Project(root).catalog.fetch(
        "SELECT data_version FROM current_materializations WHERE asset = 'revenue'"
    )
    source = (root / "assets.py").read_text()
    (root / "assets.py").write_text(
        source.replace(
            "select c.name,", "select case when c.name = 'bob' then null else c.name end as name,"
        )
    )
    done = run_cli(root, "materialize")
    assert done.returncode == 1
    assert "check_failed" in done.stdout and "blocked" in done.stdout
    history = json.loads(run_cli(root, "history", "revenue", "--json").stdout)
    failed = {c["check_name"]: c for c in history[0]["checks"]}
    assert failed["not_null_name"]["passed"] is False
    assert failed["not_null_name"]["failing_rows"] == 1
    after = Project(root).catalog.fetch(
        "SELECT data_version FROM current_materializations WHERE asset = 'revenue'"
    )
    assert after == before


def test_sql_checks_and_a_python_check_on_a_sql_asset(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        ASSETS
        + """
@check(asset="revenue", sql="select * from revenue where revenue > 10", severity="warn")
def big_spenders():
    \"\"\"Nobody spends more than 10.\"\"\"
""",
    )
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {
        c["check_name"]: c
        for c in json.loads(run_cli(root, "history", "revenue", "--json").stdout)[0]["checks"]
    }
    assert checks["big_spenders"]["passed"] is False
    assert checks["big_spenders"]["failing_rows"] == 1
    assert json.loads(checks["big_spenders"]["sample"])[0]["name"] == "ann"
    (root / "assets.py").write_text(
        ASSETS
        + """
@check(asset="revenue")
def in_python(revenue):
    return True
"""
    )
    refused = run_cli(root, "materialize")
    assert refused.returncode == 2
    assert "check 'in_python' on SQL asset 'revenue' is a Python function" in refused.stderr


def test_column_lineage_in_the_catalog_and_the_cli(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        sql={"top.sql": "select name as who, revenue * 2 as doubled, 1 as one from revenue"},
    )
    assert run_cli(root, "materialize").returncode == 0
    rows = Project(root).catalog.fetch(
        "SELECT column_name, upstream_asset, upstream_column FROM column_lineage "
        "JOIN current_materializations USING (materialization_id) WHERE asset = 'revenue' "
        "ORDER BY ALL"
    )
    assert [tuple(r.values()) for r in rows] == [
        ("name", "customers", "name"),
        ("orders", None, None),  # count(*): from no column
        ("revenue", "orders", "amount"),
    ]
    found = json.loads(run_cli(root, "lineage", "top", "--columns", "--format", "json").stdout)
    columns = {c["name"]: c["upstream"] for c in found["columns"]}
    assert columns["who"] == [
        {
            "asset": "revenue",
            "column": "name",
            "upstream": [{"asset": "customers", "column": "name", "upstream": []}],
        }
    ]
    assert columns["doubled"][0]["upstream"] == [
        {"asset": "orders", "column": "amount", "upstream": []}
    ]
    assert columns["one"] == []
    text = run_cli(root, "lineage", "top", "--columns").stdout
    assert "<- revenue.name" in text and "<- customers.name" in text
    python = run_cli(root, "lineage", "report", "--columns")
    assert python.returncode == 2 and "only SQL assets' columns are traced" in python.stderr


# -- definition errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select 1; select 2", "holds 2 statements, not one SELECT"),
        ("copy (select 1) to '/tmp/x.csv'", "is a COPY statement, not a SELECT"),
        ("attach '/tmp/x.db'", "not a SELECT"),
        ("install httpfs", "not a SELECT"),
        ("create table t as select 1", "not a SELECT"),
        ("select * from read_csv('/etc/passwd')", "which is a table function, not an asset"),
        ("select * from range(10)", "which is a table function, not an asset"),
        ("select * from main.orders", "name assets without a schema or database"),
        ("select from where", "the query does not parse"),
        ("", "the query is empty"),
    ],
)
def test_what_is_not_one_select_of_assets_is_a_definition_error(query: str, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        sql_asset("bad", query)
    assert message in str(info.value)
    assert "asset 'bad'" in str(info.value)
    assert "\n" not in info.value.message


def test_an_unknown_table_suggests_the_closest_asset(tmp_path: Path) -> None:
    root = write(tmp_path / "p", ASSETS.replace("from orders o join", "from ordrs o join"))
    done = run_cli(root, "list")
    assert done.returncode == 2
    assert "asset 'revenue'" in done.stderr
    assert "reads table 'ordrs', which is not an asset (did you mean 'orders'?)" in done.stderr


def test_a_bad_sql_file_names_the_file(tmp_path: Path) -> None:
    root = write(tmp_path / "p", sql={"Bad-Name.sql": "select 1 as x"})
    done = run_cli(root, "list")
    assert done.returncode == 2
    assert "SQL file sql/Bad-Name.sql" in done.stderr
    root = write(tmp_path / "q", sql={"two.sql": "select 1 as x; select 2 as y"})
    done = run_cli(root, "list")
    assert done.returncode == 2
    assert "asset 'two' (sql/two.sql): the query holds 2 statements" in done.stderr


def test_sql_paths_must_be_folders_that_exist(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    (root / "pyproject.toml").write_text(
        '[tool.vibepiper]\nmodules = ["assets"]\nsql_paths = ["nowhere"]\n'
    )
    with pytest.raises(ProjectLoadError, match="folder 'nowhere' does not exist"):
        Project(root)
    (root / "pyproject.toml").write_text(
        '[tool.vibepiper]\nmodules = ["assets"]\nsql_paths = "sql"\n'
    )
    with pytest.raises(ProjectLoadError, match="is not a list of folders"):
        Project(root)
    (root / "pyproject.toml").write_text(
        '[tool.vibepiper]\nmodules = ["assets"]\n[tool.vibepiper.sql]\nmemory_limt = "1GB"\n'
    )
    with pytest.raises(
        ProjectLoadError, match="has no setting 'memory_limt' \\(did you mean 'memory_limit'"
    ):
        Project(root)


def test_sql_asset_takes_asset_options() -> None:
    defn = sql_asset(
        "x",
        "select * from a join b using (id)",
        tags=["t"],
        group="g",
        checks=[expect.row_count(min=1)],
        deps=["c"],
    )
    assert dict(defn.inputs) == {"a": "a", "b": "b"}
    assert defn.upstream == ("a", "b", "c")
    assert defn.is_sql and defn.tags == ("t",) and defn.group == "g"
    with pytest.raises(DefinitionError, match="checks= takes a list"):
        sql_asset("x", "select 1 as y", checks=expect.row_count(min=1))  # type: ignore[arg-type]


# -- the sandbox -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "select * from orders where order_id in (select 1 from read_csv('/etc/passwd'))",
        "select * from orders, '/etc/passwd'",
        "select * from glob('/etc/*')",
    ],
)
def test_a_query_cannot_reach_files_even_hidden_in_a_subquery(tmp_path: Path, query: str) -> None:
    with pytest.raises(DefinitionError):
        sql_asset("sneaky", query)


def test_the_sandbox_refuses_what_the_parser_lets_through(tmp_path: Path) -> None:
    """Defence in depth: functions that read files by value are refused by DuckDB."""
    root = write(
        tmp_path / "p",
        ASSETS
        + """
sneaky = sql_asset("sneaky", "select content from orders, read_text('/etc/passwd')")
""",
    )
    # the parser sees a table function already; and a scalar one reaching a file is
    # refused by DuckDB when the query runs
    done = run_cli(root, "list")
    assert done.returncode == 2
    assert "table function" in done.stderr
    root = write(
        tmp_path / "q",
        ASSETS
        + """
sneaky = sql_asset("sneaky", "select count(*) as n from orders where getenv('HOME') is not null")
""",
    )
    done = run_cli(root, "materialize", "+sneaky")
    assert done.returncode == 1
    assert "query of asset 'sneaky' failed" in done.stdout + done.stderr


# -- streams from and to Python, partitions, re-validation -----------------------------

STREAMS = """
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from vibepiper import asset, daily, expect, sql_asset

@asset
def events() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [1, 2, None, 3, 1], "amount": [1.0, 2.0, 3.0, 4.0, 5.0]})

@asset(checks=[expect.not_null("user_id")])
def clean(events: pa.RecordBatchReader) -> pa.RecordBatchReader:
    def batches():
        for batch in events:
            yield batch.filter(pc.is_valid(batch["user_id"]))
    return pa.RecordBatchReader.from_batches(events.schema, batches())

@asset(read_as={"clean": "relation"})
def per_user(clean) -> duckdb.DuckDBPyRelation:
    return clean.aggregate("user_id, sum(amount) as total")

@asset(read_as={"per_user": "dataset"})
def rows_seen(per_user) -> pd.DataFrame:
    return pd.DataFrame({"n": [per_user.count_rows()]})
"""


def test_python_assets_take_and_give_streams(tmp_path: Path) -> None:
    root = write(tmp_path / "p", STREAMS)
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    per_user = read(root, "per_user").sort_values("user_id").reset_index(drop=True)
    assert per_user.to_dict("list") == {"user_id": [1.0, 2.0, 3.0], "total": [6.0, 2.0, 4.0]}
    assert read(root, "rows_seen")["n"].tolist() == [3]
    checks = json.loads(run_cli(root, "history", "clean", "--json").stdout)[0]["checks"]
    assert [(c["check_name"], c["passed"]) for c in checks] == [("not_null_user_id", True)]
    # a stream's data version ignores the rows' order: the same rows again are fresh
    again = run_cli(root, "materialize", "--force", "clean")
    assert again.returncode == 0
    status = json.loads(run_cli(root, "status", "--json").stdout)
    assert all(row["fresh"] for row in status), status


def test_a_streamed_output_with_a_python_check_is_rejected_with_a_reason(
    tmp_path: Path,
) -> None:
    root = write(
        tmp_path / "p",
        STREAMS
        + """
from vibepiper import check

@check(asset="clean")
def looked_at_in_pandas(clean):
    return True
""",
    )
    done = run_cli(root, "materialize")
    assert done.returncode == 1
    assert "clean" in done.stdout and "check_failed" in done.stdout
    assert "check 'looked_at_in_pandas' is a Python function" in done.stdout


def test_check_revalidates_a_sql_asset_as_sql(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    assert run_cli(root, "materialize").returncode == 0
    checked = run_cli(root, "check", "revenue")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # tighten a check: `check` judges the stored data again, as SQL, without recomputing
    source = (root / "assets.py").read_text()
    (root / "assets.py").write_text(
        source.replace("expect.row_count(min=1)", "expect.row_count(min=10)")
    )
    failed = run_cli(root, "check", "revenue")
    assert failed.returncode == 1
    assert "row_count" in failed.stdout


def test_query_show_and_doctor_read_a_sql_assets_file(tmp_path: Path) -> None:
    root = write(tmp_path / "p")
    assert run_cli(root, "materialize").returncode == 0
    found = json.loads(
        run_cli(root, "query", "select sum(revenue) as total from revenue", "--json").stdout
    )
    assert found == [{"total": 26.75}]
    shown = run_cli(root, "show", "revenue")
    assert shown.returncode == 0 and "ann" in shown.stdout
    doctor = run_cli(root, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    # a flipped byte in the stored file is caught on read (page checksums, content hash)
    (path,) = (root / ".vibepiper" / "store" / "revenue").glob("*.parquet")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert run_cli(root, "doctor").returncode == 1


PARTITIONED = """
import pandas as pd
from vibepiper import asset, daily, expect, sql_asset

DAYS = daily(start="2026-01-01", end="2026-01-04")

@asset(partitions=DAYS)
def sales(context) -> pd.DataFrame:
    day = pd.Timestamp(context.partition.start)
    return pd.DataFrame({"ts": [day + pd.Timedelta(hours=h) for h in (1, 5)], "amount": [1.0, 2.0]})

day_totals = sql_asset(
    "day_totals",
    "select partition_key() as day, sum(amount) as total, min(ts) as ts from sales "
    "where ts >= partition_start() and ts < partition_end()",
    partitions=DAYS,
    time_column="ts",
    checks=[expect.row_count(min=1, max=1)],
)

all_days = sql_asset("all_days", "select sum(total) as total from day_totals")
"""


def test_a_partitioned_sql_asset_computes_each_partition(tmp_path: Path) -> None:
    root = write(tmp_path / "p", PARTITIONED)
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    assert read(root, "all_days")["total"].tolist() == [9.0]
    parts = json.loads(run_cli(root, "partitions", "day_totals", "--json").stdout)
    assert [p["status"] for p in parts] == ["fresh"] * 3
    found = json.loads(
        run_cli(root, "query", "select day, total from day_totals order by day", "--json").stdout
    )
    assert found == [
        {"day": "2026-01-01", "total": 3.0},
        {"day": "2026-01-02", "total": 3.0},
        {"day": "2026-01-03", "total": 3.0},
    ]


@pytest.mark.parametrize(
    "query",
    [
        "select * from read_csv('/etc/passwd')",
        "select * from '/etc/passwd'",
        "copy (select 1) to '{out}'",
        "attach '{out}' as other",
        "install httpfs",
        "load httpfs",
        "set enable_external_access = true",
    ],
)
def test_the_sandbox_itself_refuses_files_databases_and_extensions(
    tmp_path: Path, query: str
) -> None:
    """Beneath the parser's refusal, DuckDB's: a query that got through would fail."""
    from vibepiper.execution.sql_run import EngineSettings, QueryError, Sandbox, query_stream

    source = tmp_path / "orders.parquet"
    duckdb.sql("copy (select 1 as id) to '" + str(source) + "'")
    settings = EngineSettings(str(tmp_path / "spill"))
    out = tmp_path / "stolen.db"
    with Sandbox({"orders": [source]}, settings) as con:
        assert con.sql("select count(*) from orders").fetchall() == [(1,)]
        with (
            pytest.raises(QueryError) as info,
            query_stream(con, query.format(out=out), "sneaky") as stream,
        ):
            list(stream)
    assert str(info.value).startswith("query of asset 'sneaky' failed: ")
    assert "\n" not in str(info.value)
    assert not out.exists()


def test_a_checks_query_cannot_read_files_either(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        ASSETS.replace(
            "expect.row_count(min=1)],",
            "expect.row_count(min=1), expect.sql(\"select * from read_text('/etc/passwd')\")],",
        ),
    )
    done = run_cli(root, "materialize")
    assert done.returncode == 1
    checks = json.loads(run_cli(root, "history", "revenue", "--json").stdout)[0]["checks"]
    (sql_check,) = [c for c in checks if c["check_name"].startswith("sql")]
    assert sql_check["passed"] is False
    assert "disabled" in sql_check["message"] or "Permission" in sql_check["message"]
    assert "root:" not in json.dumps(checks)


def test_the_data_version_does_not_depend_on_duckdbs_threads(tmp_path: Path) -> None:
    assets = """
    import pandas as pd
    from vibepiper import asset, sql_asset

    @asset
    def facts() -> pd.DataFrame:
        n = 300_000
        return pd.DataFrame({"k": [i % 5000 for i in range(n)], "v": [float(i) for i in range(n)]})

    totals = sql_asset("totals", "select k, sum(v) as v, count(*) as n from facts group by k")
    """
    versions = []
    for threads in (1, 2, 4):
        root = write(tmp_path / f"t{threads}", assets)
        text = (root / "pyproject.toml").read_text()
        (root / "pyproject.toml").write_text(text + f"[tool.vibepiper.sql]\nthreads = {threads}\n")
        assert run_cli(root, "materialize").returncode == 0
        versions.append(
            Project(root).catalog.fetch(
                "SELECT data_version FROM current_materializations WHERE asset = 'totals'"
            )[0]["data_version"]
        )
    assert len(set(versions)) == 1, versions


@pytest.mark.parametrize("executor", ["threads", "processes", "dask"])
def test_sql_assets_run_on_every_executor(tmp_path: Path, executor: str) -> None:
    root = write(tmp_path / "p", sql={"top.sql": "select max(revenue) as top from revenue"})
    done = run_cli(root, "materialize", "--executor", executor, "--workers", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert read(root, "top")["top"].tolist() == [15.5]
    lineage = Project(root).catalog.fetch(
        "SELECT count(*) AS n FROM column_lineage JOIN materializations "
        "USING (materialization_id) WHERE asset = 'top'"
    )
    assert lineage == [{"n": 1}]


def test_the_examples_sql_staging_gives_what_its_pandas_staging_gave(tmp_path: Path) -> None:
    """The example's staging layer moved from pandas to SQL: the same frames, to the
    dtype (the pandas code it replaced is here, as the reference)."""
    from tests.conftest import copy_example

    root = copy_example(tmp_path / "shop")
    done = run_cli(root, "materialize")
    assert done.returncode == 0, done.stdout + done.stderr
    data = root / "assets_example" / "data"
    customers = pd.read_csv(data / "raw_customers.csv").rename(columns={"id": "customer_id"})
    customers = customers.astype({"customer_id": "int64", "first_name": str, "last_name": str})
    orders = pd.read_csv(data / "raw_orders.csv").rename(
        columns={"id": "order_id", "user_id": "customer_id"}
    )
    orders = orders.astype({"order_id": "int64", "customer_id": "int64", "status": str})
    orders["order_date"] = pd.to_datetime(orders["order_date"], format="%Y-%m-%d")
    payments = pd.read_csv(data / "raw_payments.csv").rename(columns={"id": "payment_id"})
    payments = payments.astype({"payment_id": "int64", "order_id": "int64", "payment_method": str})
    payments["amount"] = payments["amount"].astype("float64") / 100
    expected = {
        "stg_customers": customers.sort_values("customer_id").reset_index(drop=True),
        "stg_orders": orders.sort_values("order_id").reset_index(drop=True),
        "stg_payments": payments.sort_values("payment_id").reset_index(drop=True),
    }
    project = Project(root)
    for name, frame in expected.items():
        got = project.read(name)
        frame = frame.astype({c: got[c].dtype for c in frame.columns if "date" in c})
        pd.testing.assert_frame_equal(got, frame, obj=name)
    assert project.graph.assets["stg_orders"].is_sql


def test_nan_is_seen_in_a_sql_assets_input(tmp_path: Path) -> None:
    """pyarrow leaves NaN out of Parquet statistics; the sandbox must not trust them."""
    assets = """
    import pyarrow as pa
    from vibepiper import asset, sql_asset

    @asset
    def floats() -> pa.RecordBatchReader:  # a stream keeps NaN (pandas makes it null)
        table = pa.table({"f": pa.array([0.0, float("nan"), 1.0])})
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    nans = sql_asset("nans", "select count(*) filter (where isnan(f)) as n from floats")
    big = sql_asset("big", "select count(*) as n from floats where f > 100")
    """
    root = write(tmp_path / "p", assets)
    assert run_cli(root, "materialize").returncode == 0
    assert read(root, "nans")["n"].tolist() == [1]
    assert read(root, "big")["n"].tolist() == [1]  # NaN sorts above every number in DuckDB
