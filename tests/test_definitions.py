"""Defining assets (SPEC §1) and loading a project: what is accepted, and every error.

Each definition error must be a DefinitionError (or ProjectLoadError) whose one-line
message names the culprit, and the CLI must turn it into exit code 2 without a traceback.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest

from vibepiper import AssetDef, CheckDef, Context, Project, asset, check, source_file
from vibepiper.definitions import duplicates
from vibepiper.errors import EXIT_USAGE, DefinitionError, ProjectLoadError, UsageError
from vibepiper.graph.graph import Graph

from .conftest import invoke, run_cli, write_project

BAD_NAMES = ["Orders", "1x", "a-b", "a/b", "a;drop", "", "a b", "ä"]


@pytest.fixture(autouse=True)
def _forget_project_modules(tmp_path: Path) -> Iterator[None]:
    """Loading a project imports its modules into this process: undo that afterwards."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def one_line(message: str) -> str:
    """The message, after checking it is a single line."""
    assert "\n" not in message.strip(), message
    return message


def error_line(result: Any) -> str:
    """The CLI's stderr for a usage error: exit 2, one line, no traceback."""
    assert result.exit_code == EXIT_USAGE == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    return one_line(result.stderr)


def graph_error(*defs: AssetDef | CheckDef) -> str:
    """Build a graph that must fail; return its one-line message."""
    assets = [d for d in defs if isinstance(d, AssetDef)]
    checks = [d for d in defs if isinstance(d, CheckDef)]
    with pytest.raises(DefinitionError) as info:
        Graph.build(assets, checks)
    assert info.value.exit_code == 2
    return one_line(str(info.value))


def make(name: str, params: str = "", **options: Any) -> AssetDef:
    """An asset named `name` from `def name(params)`, built with the bare decorator."""
    namespace: dict[str, Any] = {}
    exec(f"def {name}({params}):\n    return None\n", namespace)
    return asset(**options)(namespace[name]) if options else asset(namespace[name])


# --- @asset: what it builds -----------------------------------------------------------------


def test_bare_and_called_decorator_both_build_callable_definitions() -> None:
    @asset
    def orders(raw_orders: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
        """One row per order."""
        return raw_orders.merge(customers, on="customer_id")

    @asset()
    def totals(orders: pd.DataFrame) -> pd.DataFrame:
        return orders.assign(total=orders.amount * 2)

    assert isinstance(orders, AssetDef) and isinstance(totals, AssetDef)
    assert orders.name == "orders" and totals.name == "totals"
    assert dict(orders.inputs) == {"raw_orders": "raw_orders", "customers": "customers"}
    assert orders.upstream == ("raw_orders", "customers")
    assert orders.description == "One row per order."
    assert totals.description == ""
    assert orders.group == "default" and orders.tags == () and orders.deps == ()
    assert not orders.takes_context and dict(orders.config) == {}
    raw = pd.DataFrame({"order_id": [1, 2], "customer_id": [7, 8]})
    people = pd.DataFrame({"customer_id": [7, 8], "amount": [1.5, 2.5]})
    joined = orders(raw, customers=people)  # calling the definition calls the function
    assert joined.to_dict("list") == {
        "order_id": [1, 2],
        "customer_id": [7, 8],
        "amount": [1.5, 2.5],
    }
    assert totals(joined).total.tolist() == [3.0, 5.0]


def test_decorating_runs_nothing() -> None:
    calls: list[str] = []

    @asset(tags=["x"])
    def noisy() -> pd.DataFrame:
        calls.append("called")
        return pd.DataFrame()

    assert calls == []
    noisy()
    assert calls == ["called"]


def test_definitions_are_frozen() -> None:
    defn = make("frozen_one")
    with pytest.raises(dataclasses.FrozenInstanceError):
        defn.name = "other"  # type: ignore[misc]


def test_name_option_and_docstring_and_description() -> None:
    @asset(name="daily_orders", tags=["core", "finance"], group="marts")
    def build() -> pd.DataFrame:
        """Orders per day.

        Longer text.
        """
        return pd.DataFrame()

    assert build.name == "daily_orders"
    assert build.description == "Orders per day.\n\nLonger text."
    assert build.tags == ("core", "finance") and build.group == "marts"

    @asset(description="Given explicitly.")
    def explained() -> pd.DataFrame:
        """Ignored docstring."""
        return pd.DataFrame()

    assert explained.description == "Given explicitly."


def test_inputs_map_parameters_to_assets_of_another_name() -> None:
    @asset(name="sales_eu", inputs={"raw": "raw_sales", "rates": "fx_rates"})
    def build(raw: pd.DataFrame, rates: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
        return raw

    assert dict(build.inputs) == {"raw": "raw_sales", "rates": "fx_rates", "people": "people"}
    assert build.upstream == ("raw_sales", "fx_rates", "people")
    graph = Graph.build([build, make("raw_sales"), make("fx_rates"), make("people")])
    assert set(graph.upstream["sales_eu"]) == {"raw_sales", "fx_rates", "people"}
    assert graph.downstream["raw_sales"] == ("sales_eu",)


def test_context_and_config_parameters_are_not_inputs() -> None:
    @asset
    def scored(
        orders: pd.DataFrame, context: Context, factor: int = 2, *, label: str = "x"
    ) -> pd.DataFrame:
        return orders

    assert scored.takes_context
    assert dict(scored.inputs) == {"orders": "orders"}
    assert dict(scored.config) == {"factor": 2, "label": "x"}
    assert scored.upstream == ("orders",)


def test_a_parameter_with_a_default_is_config_even_when_named_like_an_asset() -> None:
    @asset
    def report(orders: int = 5) -> pd.DataFrame:
        return pd.DataFrame({"n": [orders]})

    assert dict(report.inputs) == {} and dict(report.config) == {"orders": 5}
    graph = Graph.build([report, make("orders")])
    assert graph.upstream["report"] == ()


def test_deps_add_order_only_dependencies() -> None:
    @asset(deps=["audit", "raw"])
    def summary(raw: pd.DataFrame) -> pd.DataFrame:
        return raw

    assert summary.deps == ("audit", "raw")
    assert dict(summary.inputs) == {"raw": "raw"}
    assert summary.upstream == ("raw", "audit")  # each once, inputs first
    graph = Graph.build([summary, make("raw"), make("audit")])
    assert set(graph.upstream["summary"]) == {"raw", "audit"}
    assert graph.order.index("audit") < graph.order.index("summary")


def test_options_are_recorded() -> None:
    @asset(retries=3, retry_delay=0.5, timeout=10, max_age=3600, pool="db", version=2)
    def tuned() -> pd.DataFrame:
        return pd.DataFrame()

    assert (tuned.retries, tuned.retry_delay, tuned.timeout) == (3, 0.5, 10.0)
    assert tuned.max_age == timedelta(hours=1)
    assert tuned.pool == "db" and tuned.version == "2"
    assert make("aged", max_age=timedelta(days=1)).max_age == timedelta(days=1)


def test_async_asset_is_awaited_by_the_runner(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {
            "async_assets": """
            import asyncio
            import pandas as pd
            from vibepiper import Context, asset

            @asset
            async def fetched(context: Context) -> pd.DataFrame:
                await asyncio.sleep(0)
                return pd.DataFrame({"n": [1, 2, 3], "asset": context.asset})

            @asset
            def doubled(fetched: pd.DataFrame, factor: int = 2) -> pd.DataFrame:
                return fetched.assign(n=fetched.n * factor)
            """
        }
    )
    project = Project(root)
    assert project.graph.assets["fetched"].is_async
    run = project.materialize()
    assert run.states == {"fetched": "succeeded", "doubled": "succeeded"}
    assert project.read("fetched").to_dict("list") == {"n": [1, 2, 3], "asset": ["fetched"] * 3}
    assert project.read("doubled").n.tolist() == [2, 4, 6]


FACTORY = """
import pandas as pd
from vibepiper import asset, source_file

raw_sales = source_file("raw_sales", "data/sales.csv")


def regional(region):
    @asset(name=f"sales_{region}", inputs={"raw": "raw_sales"}, tags=["regional"])
    def build(raw: pd.DataFrame) -> pd.DataFrame:
        return raw[raw.region == region].reset_index(drop=True)

    return build


REGIONS = ("eu", "us", "ap")
"""


@pytest.mark.parametrize(
    "container",
    [
        "REGIONAL = [regional(r) for r in REGIONS]",
        "REGIONAL = {r: regional(r) for r in REGIONS}",
        "REGIONAL = tuple(regional(r) for r in REGIONS)",
    ],
)
def test_assets_built_by_a_factory_are_found(
    project_dir: Callable[..., Path], container: str
) -> None:
    root = project_dir(
        {"factory_assets": FACTORY + container + "\n"},
        {"data/sales.csv": "region,amount\neu,1\nus,2\nus,3\nap,4\n"},
    )
    project = Project(root)
    assert sorted(project.assets) == ["raw_sales", "sales_ap", "sales_eu", "sales_us"]
    for region in ("eu", "us", "ap"):
        assert project.graph.upstream[f"sales_{region}"] == ("raw_sales",)
        assert project.graph.assets[f"sales_{region}"].tags == ("regional",)
    assert project.select("tag:regional") != []


def test_factory_assets_read_their_mapped_input(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {"factory_run": FACTORY + "REGIONAL = [regional(r) for r in REGIONS]\n"},
        {"data/sales.csv": "region,amount\neu,1\nus,2\nus,3\nap,4\n"},
    )
    project = Project(root)
    assert project.materialize().ok
    assert project.read("sales_us").amount.tolist() == [2, 3]
    assert project.read("sales_ap").to_dict("list") == {"region": ["ap"], "amount": [4]}


# --- definition errors at decoration --------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_asset_names_are_rejected(name: str) -> None:
    with pytest.raises(DefinitionError) as info:
        asset(name=name)(lambda: None)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    message = one_line(str(info.value))
    assert f"asset name {name!r} is not valid" in message
    assert "lowercase" in message  # the fix


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_source_names_are_rejected(name: str) -> None:
    with pytest.raises(DefinitionError) as info:
        source_file(name, "data/x.csv")
    assert f"source name {name!r} is not valid" in one_line(str(info.value))


def test_a_badly_named_function_is_rejected() -> None:
    with pytest.raises(DefinitionError, match="'Orders' is not valid"):
        make("Orders")


@pytest.mark.parametrize("name", ["Orders", "1x", "a-b", "a/b", "a;drop"])
def test_bad_names_in_inputs_and_deps_are_rejected(name: str) -> None:
    with pytest.raises(DefinitionError, match=r"asset 'ok': input name .* is not valid"):
        make("ok", "raw", inputs={"raw": name})
    with pytest.raises(DefinitionError, match=r"asset 'ok': dependency name .* is not valid"):
        make("ok", deps=[name])


def test_inputs_naming_a_non_parameter() -> None:
    with pytest.raises(DefinitionError) as info:
        make("sales", "raw", inputs={"rw": "raw_sales"})
    message = one_line(str(info.value))
    assert "asset 'sales'" in message
    assert "inputs= names 'rw', which is not a parameter of sales()" in message
    assert "its parameters are raw" in message


@pytest.mark.parametrize(("params", "culprit"), [("*frames", "frames"), ("**named", "named")])
def test_star_parameters_are_rejected(params: str, culprit: str) -> None:
    with pytest.raises(DefinitionError) as info:
        make("gathered", f"raw, {params}")
    message = one_line(str(info.value))
    assert f"asset 'gathered': parameter '{culprit}' is *args/**kwargs" in message


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("retries", -1),
        ("retries", 1.5),
        ("retries", "2"),
        ("retries", True),
        ("retries", None),
        ("retry_delay", -1),
        ("retry_delay", "1s"),
        ("timeout", 0),
        ("timeout", -5),
        ("timeout", "10"),
        ("max_age", 0),
        ("max_age", -60),
        ("max_age", "1h"),
        ("max_age", True),
        ("version", 1.5),
    ],
)
def test_bad_option_values_are_rejected(option: str, value: object) -> None:
    with pytest.raises(DefinitionError) as info:
        make("tuned", **{option: value})
    message = one_line(str(info.value))
    assert message.startswith(f"asset 'tuned': {option}={value!r} is not valid; give ")


@pytest.mark.parametrize("tags", [[""], [3], ["ok", None]])
def test_bad_tags_are_rejected(tags: list[object]) -> None:
    with pytest.raises(DefinitionError) as info:
        make("tagged", tags=tags)
    assert one_line(str(info.value)).startswith(f"asset 'tagged': tags contains {tags[-1]!r}")


@pytest.mark.parametrize(
    ("option", "value"),
    [("timeout", True), ("timeout", float("nan")), ("retry_delay", float("nan"))],
)
def test_bool_and_nan_timeouts_are_rejected(option: str, value: object) -> None:
    with pytest.raises(DefinitionError, match=f"asset 'tuned': {option}="):
        make("tuned", **{option: value})


@pytest.mark.parametrize("value", [float("inf"), 1e20])
def test_max_age_too_large_is_a_definition_error(value: float) -> None:
    with pytest.raises(DefinitionError, match="asset 'tuned': max_age="):
        make("tuned", max_age=value)


def test_source_file_with_an_unknown_suffix_needs_read() -> None:
    with pytest.raises(DefinitionError) as info:
        source_file("raw_book", "data/book.xlsx")
    message = one_line(str(info.value))
    assert "source 'raw_book': cannot read 'data/book.xlsx' (unknown file type)" in message
    assert "read=" in message
    defn = source_file("raw_book", "data/book.xlsx", read=lambda p: pd.DataFrame())
    assert defn.is_source and defn.source_path == "data/book.xlsx"
    with pytest.raises(DefinitionError, match="source 'raw_book': path '' is not valid"):
        source_file("raw_book", "")


class Orders(pa.DataFrameModel):
    n: int


class NotASchema:
    n: int


BAD_SCHEMAS = {
    "a dict": ({"n": int}, "is of type dict"),
    "a string": ("Orders", "is of type str"),
    "a number": (42, "is of type int"),
    "a plain class": (NotASchema, "is the class NotASchema"),
    "a type": (int, "is the class int"),
    "a pandera column": (pa.Column(int), "is of type Column"),
    "a pandera series schema": (pa.SeriesSchema(int), "is of type SeriesSchema"),
    "a data frame": (pd.DataFrame({"n": [1]}), "is of type DataFrame"),
}


@pytest.mark.parametrize(("schema", "got"), BAD_SCHEMAS.values(), ids=BAD_SCHEMAS)
def test_a_schema_that_is_not_a_pandera_schema_is_rejected_at_decoration(
    schema: object, got: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        make("orders", schema=schema)
    assert info.value.exit_code == 2
    message = one_line(str(info.value))
    assert f"asset 'orders': schema= {got}, not a pandera schema;" in message
    assert "pass a pandera DataFrameModel subclass or a pandera DataFrameSchema" in message
    with pytest.raises(DefinitionError) as info:
        source_file("raw_orders", "data/orders.csv", schema=schema)
    assert f"source 'raw_orders': schema= {got}, not a pandera schema;" in one_line(str(info.value))


def test_pandera_schemas_old_and_new_are_accepted() -> None:
    with warnings.catch_warnings():  # the legacy top-level API warns that it is deprecated
        warnings.simplefilter("ignore")
        import pandera as legacy

        class LegacyOrders(legacy.DataFrameModel):
            n: int

        legacy_schema = legacy.DataFrameSchema({"n": legacy.Column(int)})
    schemas = [Orders, pa.DataFrameSchema({"n": pa.Column(int)}), LegacyOrders, legacy_schema]
    for schema in schemas:
        assert make("orders", schema=schema).schema is schema
        assert source_file("raw", "data/raw.csv", schema=schema).schema is schema
    assert make("orders", schema=None).schema is None


def test_decorating_without_a_schema_does_not_import_pandera() -> None:
    code = (
        "import sys\n"
        "from vibepiper import asset, check, source_file\n"
        "asset(lambda: None, name='a')\n"
        "source_file('raw', 'raw.csv')\n"
        "check(asset='a', name='positive')(lambda a: True)\n"
        "print(sorted(m for m in ('pandas', 'pandera') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_check_with_a_bad_asset_name_is_rejected_at_once() -> None:
    with pytest.raises(DefinitionError, match="'Orders' is not valid"):
        check(asset="Orders")
    with pytest.raises(DefinitionError, match="check name 'Bad' is not valid"):
        check(asset="orders", name="Bad")(lambda orders: True)


# --- definition errors when the graph is built ----------------------------------------------


def test_unknown_parameter_suggests_the_closest_asset() -> None:
    message = graph_error(make("orders"), make("customers"), make("totals", "ordrs"))
    assert "asset 'totals': parameter 'ordrs' is not an asset (did you mean 'orders'?)" in message
    assert "inputs=" in message  # the ways to fix it


def test_unknown_parameter_with_nothing_close_has_no_suggestion() -> None:
    message = graph_error(make("orders"), make("totals", "zzzz"))
    assert "asset 'totals': parameter 'zzzz' is not an asset" in message
    assert "did you mean" not in message


def test_unknown_mapped_input_names_the_mapping() -> None:
    defn = make("sales", "raw", inputs={"raw": "raw_sale"})
    message = graph_error(defn, make("raw_sales"))
    assert "asset 'sales': input 'raw' -> 'raw_sale' is not an asset" in message
    assert "did you mean 'raw_sales'?" in message


def test_unknown_deps_names_the_dependency() -> None:
    message = graph_error(make("report", deps=["revenu"]), make("revenue"))
    assert "asset 'report' depends on unknown asset 'revenu' (did you mean 'revenue'?)" in message


def test_duplicate_names_name_both_modules() -> None:
    first = dataclasses.replace(make("orders"), module="shop.staging")
    second = dataclasses.replace(make("orders"), module="shop.marts")
    message = graph_error(first, second)
    assert "asset 'orders' is defined twice (in shop.staging and shop.marts)" in message
    # the same object seen twice (e.g. imported into a second module) is not a duplicate
    assert Graph.build([first, first]).order == ("orders",)


@pytest.mark.parametrize(
    ("a", "b", "c", "path"),
    [
        # data flows a -> b -> c -> a: b reads a, c reads b, a reads c
        ("c", "a", "b", "a -> b -> c -> a"),
        # the other way round: a reads b, b reads c, c reads a
        ("b", "c", "a", "a -> c -> b -> a"),
    ],
)
def test_cycle_reports_its_exact_path(a: str, b: str, c: str, path: str) -> None:
    defs = [make("a", a), make("b", b), make("c", c), make("start"), make("end", "a")]
    message = graph_error(*defs)
    assert f"dependency cycle: {path};" in message
    assert "cannot depend" in message


def test_cycle_through_deps_and_inputs() -> None:
    message = graph_error(make("a", deps=["c"]), make("b", "a"), make("c", deps=["b"]))
    assert "dependency cycle: a -> b -> c -> a;" in message


@pytest.mark.parametrize(
    "defn",
    [make("loop", "loop"), make("loop", deps=["loop"]), make("loop", "x", inputs={"x": "loop"})],
)
def test_an_asset_depending_on_itself(defn: AssetDef) -> None:
    message = graph_error(defn, make("other"))
    assert "asset 'loop' depends on itself" in message


def test_check_on_an_unknown_asset() -> None:
    @check(asset="ordrs")
    def positive(ordrs: pd.DataFrame) -> bool:
        return True

    message = graph_error(make("orders"), positive)
    assert "check 'positive' is on unknown asset 'ordrs' (did you mean 'orders'?)" in message


def test_check_parameter_that_is_not_an_asset() -> None:
    @check(asset="orders", severity="warn")
    def matches(orders: pd.DataFrame, custmers: pd.DataFrame) -> bool:
        return True

    message = graph_error(make("orders"), make("customers"), matches)
    assert "check 'matches': parameter 'custmers' is not an asset" in message
    assert "did you mean 'customers'?" in message


def test_check_reading_another_asset_adds_an_edge() -> None:
    @check(asset="orders")
    def known(orders: pd.DataFrame, customers: pd.DataFrame) -> bool:
        return True

    graph = Graph.build([make("orders"), make("customers")], [known])
    assert graph.upstream["orders"] == ("customers",)
    assert graph.checks["orders"] == (known,)


# --- loading a project, through the CLI -----------------------------------------------------

CYCLE = """
import pandas as pd
from vibepiper import asset

@asset
def a(c: pd.DataFrame) -> pd.DataFrame:
    return c

@asset
def b(a: pd.DataFrame) -> pd.DataFrame:
    return a

@asset
def c(b: pd.DataFrame) -> pd.DataFrame:
    return b
"""

GOOD = """
import pandas as pd
from vibepiper import asset

@asset(tags=["core"])
def orders() -> pd.DataFrame:
    return pd.DataFrame({"n": [1]})
"""


def test_cli_cycle_exits_2_with_the_path(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"cyclic_assets": CYCLE})
    result = run_cli(root, "list")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith("error: dependency cycle: a -> b -> c -> a;")


def test_cli_import_failure_exits_2_naming_module_and_error(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir({"broken_assets": "import pandas as pd\n\nrows = undefined_name + 1\n"})
    result = run_cli(root, "list")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    line = one_line(result.stderr)
    assert "module 'broken_assets' failed to import" in line
    assert "NameError" in line and "undefined_name" in line
    assert "broken_assets.py:3" in line


def test_cli_definition_error_in_a_module_names_asset_and_module(
    project_dir: Callable[..., Path],
) -> None:
    root = project_dir(
        {"badly_named": "from vibepiper import asset\n\n@asset(name='Orders')\ndef f(): pass\n"}
    )
    line = error_line(invoke(root, "list"))
    assert "'Orders' is not valid" in line and "badly_named" in line


def test_cli_unknown_parameter_says_did_you_mean(project_dir: Callable[..., Path]) -> None:
    root = project_dir(
        {"typo_assets": GOOD + "\n@asset\ndef totals(ordrs: pd.DataFrame):\n    return ordrs\n"}
    )
    line = error_line(invoke(root, "list"))
    assert "asset 'totals': parameter 'ordrs' is not an asset (did you mean 'orders'?)" in line


def test_cli_duplicate_asset_names_both_modules(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"dup_one": GOOD, "dup_two": GOOD})
    line = error_line(invoke(root, "list"))
    assert "asset 'orders' is defined twice (in dup_one and dup_two)" in line


def test_cli_a_schema_that_is_not_pandera_exits_2_before_running(
    project_dir: Callable[..., Path],
) -> None:
    source = GOOD.replace('@asset(tags=["core"])', '@asset(tags=["core"], schema={"n": int})')
    root = project_dir({"dict_schema": source})
    result = run_cli(root, "materialize")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    line = one_line(result.stderr)
    assert line.startswith("error: asset 'orders': schema= is of type dict, not a pandera schema")
    assert "dict_schema" in line and "DataFrameModel" in line
    assert not (root / ".vibepiper" / "catalog.duckdb").exists()


# Lines 1-3 of every module below; each case's own source starts at line 4 (blank).
DUP_HEAD = """\
import pandas as pd
import vibepiper as vp
from vibepiper import asset, check, expect, source_file
"""
RENAME = "rename one of them: a module-level name keeps only its last definition"

# case -> (the module after DUP_HEAD, the message, the hint)
DUPLICATES = {
    # the second used to replace the first silently, dropping its checks
    "the same function twice": (
        """
        @asset(checks=[expect.not_null("n")])
        def orders():
            return pd.DataFrame({"n": [1]})

        @vp.asset()
        def orders():
            return pd.DataFrame({"n": [None]})
        """,
        "asset 'orders' is defined twice in module dups (lines 5 and 9)",
        RENAME,
    ),
    "name= of one function is the name of another": (
        """
        @asset(name="orders")
        def build_orders():
            return pd.DataFrame({"n": [1]})

        @asset
        def orders():
            return pd.DataFrame({"n": [2]})
        """,
        "asset 'orders' is defined twice in module dups (lines 5 and 9)",
        "give one of them another name, e.g. with @asset(name=...)",
    ),
    "a source_file variable rebound by an @asset": (
        """
        orders = source_file("orders", "data/orders.csv")

        @asset
        def orders():
            return pd.DataFrame({"n": [2]})
        """,
        "asset 'orders' is defined twice in module dups (lines 5 and 7)",
        RENAME,
    ),
    "a source_file and an @asset of the same name": (
        """
        raw = source_file("orders", "data/orders.csv")

        @asset
        def orders():
            return pd.DataFrame({"n": [2]})
        """,
        "asset 'orders' is defined twice in module dups (lines 5 and 7)",
        "give one of them another name, e.g. with @asset(name=...)",
    ),
    "two assets made by one factory": (
        """
        def make(name):
            @asset(name=name)
            def build():
                return pd.DataFrame({"n": [1]})
            return build

        MADE = [make("orders"), make("orders")]
        """,
        "asset 'orders' is defined twice in module dups (line 6)",
        "give one of them another name, e.g. with @asset(name=...)",
    ),
    "the same check function twice on one asset": (
        """
        @asset
        def orders():
            return pd.DataFrame({"n": [1]})

        @check(asset="orders")
        def positive(orders):
            return bool((orders.n > 0).all())

        @check(asset="orders", severity="warn")
        def positive(orders):
            return True
        """,
        "check 'positive' on asset 'orders' is defined twice in module dups (lines 9 and 13)",
        RENAME,
    ),
    "two check functions with one name= on one asset": (
        """
        @asset
        def orders():
            return pd.DataFrame({"n": [1]})

        @check(asset="orders", name="positive")
        def positive_n(orders):
            return True

        @check(asset="orders", name="positive")
        def positive_too(orders):
            return True
        """,
        "check 'positive' on asset 'orders' is defined twice in module dups (lines 9 and 13)",
        "give one of them another name, e.g. with @check(name=...)",
    ),
    "a check function named like its asset replaces the asset": (
        """
        @asset
        def orders():
            return pd.DataFrame({"n": [1]})

        @check(asset="orders")
        def orders(orders):
            return True
        """,
        "asset 'orders' in module dups (line 5) is lost: line 9 binds the name 'orders' again",
        RENAME,
    ),
    "a plain function after an asset of its name": (
        """
        @asset
        def orders():
            return pd.DataFrame({"n": [1]})

        def orders():
            return "a helper"
        """,
        "asset 'orders' in module dups (line 5) is lost: line 9 binds the name 'orders' again",
        RENAME,
    ),
}


@pytest.mark.parametrize(("body", "message", "hint"), DUPLICATES.values(), ids=DUPLICATES)
def test_a_module_defining_an_asset_or_check_twice_is_refused(
    project_dir: Callable[..., Path], body: str, message: str, hint: str
) -> None:
    root = project_dir({"dups": DUP_HEAD + textwrap.dedent(body)})
    with pytest.raises(DefinitionError) as info:
        Project(root)
    assert info.value.exit_code == 2
    assert one_line(str(info.value)) == f"{message}; {hint}"


# case -> a module that binds a name twice without losing or repeating a definition
NOT_DUPLICATES = {
    "a helper replaced by an asset of its name": """
        def orders():
            return "a helper"

        @asset
        def orders():
            return pd.DataFrame({"n": [1]})
        """,
    "the first asset is kept in a list": """
        @asset
        def orders():
            return pd.DataFrame({"n": [1]})

        KEPT = [orders]

        @asset(name="orders_v2")
        def orders():
            return pd.DataFrame({"n": [2]})
        """,
    "one definition or the other, chosen at import": """
        FAST = True
        if FAST:
            @asset
            def orders():
                return pd.DataFrame({"n": [1]})
        else:
            @asset
            def orders():
                return pd.DataFrame({"n": [2]})
        FAST = False
        """,
}


@pytest.mark.parametrize("body", NOT_DUPLICATES.values(), ids=NOT_DUPLICATES)
def test_a_module_rebinding_a_name_without_losing_a_definition_loads(
    project_dir: Callable[..., Path], body: str
) -> None:
    root = project_dir({"rebinds": DUP_HEAD + textwrap.dedent(body)})
    assert "orders" in Project(root).assets


def test_only_a_module_that_binds_a_name_twice_is_parsed(
    project_dir: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[str] = []
    parse = duplicates._top_level_bindings

    def spy(source: str) -> Any:
        parsed.append(source)
        return parse(source)

    monkeypatch.setattr(duplicates, "_top_level_bindings", spy)
    Project(project_dir({"once": GOOD, "twice": DUP_HEAD + "x = 1\nx = 2\n"}))
    assert parsed == [DUP_HEAD + "x = 1\nx = 2\n"]  # parsing every module would be slow


def test_cli_an_asset_defined_twice_in_one_module_exits_2_naming_it(
    project_dir: Callable[..., Path],
) -> None:
    body = DUPLICATES["the same function twice"][0]
    root = project_dir({"dups": DUP_HEAD + textwrap.dedent(body)})
    result = run_cli(root, "list")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    line = one_line(result.stderr)
    expected = "error: asset 'orders' is defined twice in module dups (lines 5 and 9)"
    assert line == f"{expected}; {RENAME}\n"


def test_cli_missing_module_is_named(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"present_assets": GOOD})
    line = error_line(invoke(root, "-m", "no_such_assets_module", "list"))
    assert "module 'no_such_assets_module' was not found" in line


def test_cli_module_importing_a_missing_library(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"needs_lib": "import no_such_library_xyz\n"})
    line = error_line(invoke(root, "list"))
    assert "module 'needs_lib' failed to import" in line
    assert "ModuleNotFoundError" in line and "no_such_library_xyz" in line


def test_cli_syntax_error_in_a_module(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"unparsable": "def broken(:\n    pass\n"})
    line = error_line(invoke(root, "list"))
    assert "module 'unparsable' failed to import" in line and "SyntaxError" in line


def test_cli_no_modules_configured(project_dir: Callable[..., Path]) -> None:
    root = project_dir({})
    line = error_line(invoke(root, "list"))
    assert "no asset modules" in line and "-m MODULE" in line


def test_cli_no_pyproject_at_all(tmp_path: Path) -> None:
    line = error_line(invoke(tmp_path, "list"))
    assert "no asset modules" in line


def test_cli_invalid_pyproject_toml(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"present_assets": GOOD})
    (root / "pyproject.toml").write_text('[tool.vibepiper\nmodules = ["present_assets"]\n')
    line = error_line(invoke(root, "list"))
    assert "pyproject.toml is not valid TOML" in line


def test_cli_missing_project_folder(tmp_path: Path) -> None:
    line = error_line(invoke(tmp_path / "nowhere", "list"))
    assert "nowhere" in line and "does not exist" in line


def test_cli_module_option_overrides_pyproject(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"broken_listed": "raise RuntimeError('never imported')\n"})
    (root / "good_unlisted.py").write_text(GOOD)
    result = invoke(root, "-m", "good_unlisted", "list", "--json")
    assert result.exit_code == 0, result.output
    assert '"name": "orders"' in result.stdout
    # without -m, the pyproject list is used, and its module is broken
    assert "broken_listed" in error_line(invoke(root, "list"))


def test_project_api_raises_the_same_errors(project_dir: Callable[..., Path]) -> None:
    root = project_dir({"cyclic_assets": CYCLE})
    with pytest.raises(DefinitionError, match="dependency cycle: a -> b -> c -> a"):
        Project(root)
    with pytest.raises(ProjectLoadError, match="module 'absent_mod' was not found"):
        Project(root, modules=["absent_mod"])


@pytest.mark.parametrize("layout", ["package", "module list"])
def test_an_asset_imported_by_a_sibling_module_is_not_a_duplicate(
    tmp_path: Path, layout: str
) -> None:
    sources = "import pandas as pd\nfrom vibepiper import asset\n\n@asset\ndef raw():\n"
    sources += "    return pd.DataFrame({'x': [1]})\n"
    marts = "from vibepiper import asset\nfrom {m} import raw\n\n@asset\ndef clean(raw):\n"
    marts += "    return raw\n"
    root = tmp_path / "proj"
    if layout == "package":  # submodules load alphabetically: a_marts, then b_sources
        package = root / "sibling_pkg"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "a_marts.py").write_text(marts.format(m="sibling_pkg.b_sources"))
        (package / "b_sources.py").write_text(sources)
        (root / "pyproject.toml").write_text('[tool.vibepiper]\nmodules = ["sibling_pkg"]\n')
    else:  # the first listed module imports from the second
        write_project(root, {"marts_mod": marts.format(m="sources_mod"), "sources_mod": sources})
    assert sorted(Project(root).assets) == ["clean", "raw"]


# --- source_file ----------------------------------------------------------------------------


def test_source_files_are_read_as_csv_parquet_json_or_with_read(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    data = root / "data"
    data.mkdir(parents=True)
    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})
    frame.to_csv(data / "people.csv", index=False)
    frame.to_parquet(data / "people.parquet", index=False)
    (data / "people.json").write_text(frame.to_json(orient="records"))
    (data / "people.jsonl").write_text(frame.to_json(orient="records", lines=True))
    (data / "people.txt").write_text("a|1\nb|2\n")
    write_project(
        root,
        {
            "file_sources": """
            import pandas as pd
            from vibepiper import source_file

            def read_pipes(path):
                rows = [line.split("|") for line in open(path).read().splitlines()]
                return pd.DataFrame({"name": [r[0] for r in rows],
                                     "id": [int(r[1]) for r in rows]})

            from_csv = source_file("from_csv", "data/people.csv")
            from_parquet = source_file("from_parquet", "data/people.parquet")
            from_json = source_file("from_json", "data/people.json")
            from_jsonl = source_file("from_jsonl", "data/people.jsonl")
            from_txt = source_file("from_txt", "data/people.txt", read=read_pipes)
            """
        },
    )
    project = Project(root)
    defn = project.graph.assets["from_csv"]
    assert defn.is_source and defn.group == "sources" and defn.module == "file_sources"
    assert project.graph.upstream["from_csv"] == ()
    run = project.materialize()
    assert set(run.states.values()) == {"succeeded"}, run.states
    expected = {"id": [1, 2, 3], "name": ["a", "b", "c"]}
    for name in ("from_csv", "from_parquet", "from_json", "from_jsonl"):
        assert project.read(name).to_dict("list") == expected, name
    assert project.read("from_txt").to_dict("list") == {"name": ["a", "b"], "id": [1, 2]}


def test_a_known_order_is_used_only_when_it_orders_these_very_edges() -> None:
    """A snapshot's saved order spares sorting the graph again; an order from disk that
    does not fit the edges (edited, forged, stale) is not used: the graph is sorted."""
    assets = [make("c", "b"), make("b", "a"), make("a"), make("d")]
    sorted_order = Graph.build(assets).order
    assert sorted_order == ("a", "d", "b", "c")

    another_valid = ("d", "a", "b", "c")
    assert Graph.build(assets, order=another_valid).order == another_valid
    for wrong in [
        ("c", "b", "a", "d"),  # an asset before its upstream
        ("a", "b", "c"),  # one missing
        ("a", "a", "b", "c"),  # one twice, one missing
        ("a", "b", "c", "d", "e"),  # one too many
        ("a", "x", "b", "c"),  # one unknown
    ]:
        assert Graph.build(assets, order=wrong).order == sorted_order


def test_an_earlier_graph_gives_its_order_only_if_its_edges_are_these() -> None:
    before = Graph.build([make("a"), make("b"), make("c", "b")])
    forced = dataclasses.replace(before, order=("b", "c", "a"))  # (as if sorted otherwise)
    same = Graph.build([make("a"), make("b"), make("c", "b")], like=forced)
    assert same.order == forced.order  # same edges: not sorted again
    other = Graph.build([make("a"), make("b", "a"), make("c", "b")], like=forced)
    assert other.order == ("a", "b", "c")  # new edges: sorted
