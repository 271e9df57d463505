"""Selection (SPEC §4): parse and resolve against a graph, by hand and by property."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vibepiper import asset, source_file
from vibepiper.errors import EXIT_USAGE, SelectionError
from vibepiper.graph.graph import Graph
from vibepiper.graph.selection import Atom, parse, resolve

# --- a small hand-made graph --------------------------------------------------------------
#
#   raw_orders    (source, tags raw)       -> stg_orders     (group staging, tags staging)
#   raw_customers (source, tags raw, pii)  -> stg_customers  (group staging, tags staging, pii)
#   stg_orders, stg_customers              -> orders         (group marts, tags core)
#   stg_customers, orders                  -> customers      (group marts, tags core, pii)
#   orders                                 -> revenue        (group marts, tags finance)
#   revenue (deps=, order only)            -> report         (group reports, tags finance)
#   lonely                                                   (group misc, no edges)


def _stg_orders(raw_orders: pd.DataFrame) -> pd.DataFrame:
    return raw_orders


def _stg_customers(raw_customers: pd.DataFrame) -> pd.DataFrame:
    return raw_customers


def orders(stg_orders: pd.DataFrame, stg_customers: pd.DataFrame) -> pd.DataFrame:
    return stg_orders


def customers(stg_customers: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    return stg_customers


def revenue(orders: pd.DataFrame) -> pd.DataFrame:
    return orders


def _nothing() -> pd.DataFrame:
    return pd.DataFrame()


def shop_graph() -> Graph:
    return Graph.build(
        [
            source_file("raw_orders", "data/raw_orders.csv", tags=["raw"]),
            source_file("raw_customers", "data/raw_customers.csv", tags=["raw", "pii"]),
            asset(name="stg_orders", tags=["staging"], group="staging")(_stg_orders),
            asset(name="stg_customers", tags=["staging", "pii"], group="staging")(_stg_customers),
            asset(tags=["core"], group="marts")(orders),
            asset(tags=["core", "pii"], group="marts")(customers),
            asset(tags=["finance"], group="marts")(revenue),
            asset(name="report", deps=["revenue"], tags=["finance"], group="reports")(_nothing),
            asset(name="lonely", group="misc")(_nothing),
        ]
    )


GRAPH = shop_graph()
ALL = set(GRAPH.assets)
RAW = {"raw_orders", "raw_customers"}
STG = {"stg_orders", "stg_customers"}


def sel(select: str | Iterable[str] | None, exclude: str | Iterable[str] | None = None) -> set[str]:
    """Resolve on GRAPH, checking the list is duplicate-free and in the graph's order."""
    names = resolve(GRAPH, select, exclude)
    assert len(names) == len(set(names))
    assert names == GRAPH.sorted(names)
    return set(names)


def test_the_hand_made_graph_has_the_edges_drawn_above() -> None:
    assert set(GRAPH.upstream["orders"]) == STG
    assert set(GRAPH.upstream["customers"]) == {"stg_customers", "orders"}
    assert GRAPH.upstream["report"] == ("revenue",)
    assert GRAPH.upstream["lonely"] == ()


def test_no_selection_means_every_asset_in_topological_order() -> None:
    assert resolve(GRAPH) == list(GRAPH.order)
    assert resolve(GRAPH, None) == list(GRAPH.order)
    assert resolve(GRAPH, ()) == list(GRAPH.order)


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("orders", {"orders"}),
        ("lonely", {"lonely"}),
        ("stg_*", STG),
        ("raw_?????s", {"raw_orders"}),
        ("*s", ALL - {"report", "lonely", "revenue"}),
        ("stg_[o]*", {"stg_orders"}),
        ("tag:pii", {"raw_customers", "stg_customers", "customers"}),
        ("tag:core", {"orders", "customers"}),
        ("group:marts", {"orders", "customers", "revenue"}),
        ("group:sources", RAW),
        ("group:reports", {"report"}),
    ],
)
def test_atoms_without_graph_operators(select: str, expected: set[str]) -> None:
    assert sel(select) == expected


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("+orders", {"orders"} | STG | RAW),
        ("1+orders", {"orders"} | STG),
        ("2+orders", {"orders"} | STG | RAW),
        ("9+orders", {"orders"} | STG | RAW),
        ("0+orders", {"orders"}),
        ("1+customers", {"customers", "stg_customers", "orders"}),
        ("+report", {"report", "revenue", "orders"} | STG | RAW),
        ("orders+", {"orders", "customers", "revenue", "report"}),
        ("orders+1", {"orders", "customers", "revenue"}),
        ("orders+2", {"orders", "customers", "revenue", "report"}),
        ("raw_orders+2", {"raw_orders", "stg_orders", "orders"}),
        ("1+orders+1", {"orders", "customers", "revenue"} | STG),
        ("+orders+", ALL - {"lonely"}),
        ("+lonely+", {"lonely"}),
        ("tag:finance+", {"revenue", "report"}),
        ("+group:staging", STG | RAW),
        ("stg_*+1", STG | {"orders", "customers"}),
    ],
)
def test_graph_operators(select: str, expected: set[str]) -> None:
    assert sel(select) == expected


def test_at_takes_the_descendants_and_all_their_ancestors() -> None:
    # revenue's descendants (report) and everything they need, but not its sibling customers
    assert sel("@revenue") == {"revenue", "report", "orders"} | STG | RAW
    assert sel("@stg_orders") == ALL - {"lonely"}
    # customers is a leaf: @ adds only its ancestors
    assert sel("@customers") == sel("+customers")
    assert sel("@lonely") == {"lonely"}
    assert sel("@tag:finance") == {"revenue", "report", "orders"} | STG | RAW


def test_terms_separated_by_spaces_are_a_union() -> None:
    assert sel("lonely revenue") == {"lonely", "revenue"}
    assert sel("lonely  revenue\ttag:raw") == {"lonely", "revenue"} | RAW
    assert sel(["lonely", "revenue"]) == {"lonely", "revenue"}
    assert sel(("orders+1", "tag:raw")) == {"orders", "customers", "revenue"} | RAW
    assert sel("orders orders") == {"orders"}


def test_terms_joined_by_commas_are_an_intersection() -> None:
    assert sel("tag:core,group:marts") == {"orders", "customers"}
    assert sel("tag:pii,group:marts") == {"customers"}
    assert sel("+orders,tag:staging") == STG
    assert sel("+customers,orders+") == {"orders", "customers"}
    assert sel("tag:pii,tag:raw,group:sources") == {"raw_customers"}
    assert sel("lonely,orders") == set()  # an empty intersection is not an error
    # a comma binds tighter than a space
    assert sel("lonely tag:core,group:marts") == {"lonely", "orders", "customers"}


def test_exclude_is_applied_last() -> None:
    assert sel("orders+", exclude="customers") == {"orders", "revenue", "report"}
    assert sel("+revenue", exclude="tag:raw tag:staging") == {"orders", "revenue"}
    # the union is complete before anything is excluded: a later term does not re-add it
    assert sel("stg_orders orders stg_orders", exclude="stg_orders") == {"orders"}
    assert sel(None, exclude="+orders+") == {"lonely"}
    assert sel("orders", exclude="orders") == set()
    assert sel(("orders+",), exclude=("revenue+", "customers")) == {"orders"}
    assert sel("+customers", exclude="tag:pii,group:staging") == (
        {"customers", "orders", "stg_orders"} | RAW
    )


@pytest.mark.parametrize(
    ("select", "culprit", "suggestion"),
    [
        ("ordrs", "ordrs", "orders"),
        ("+ordrs", "ordrs", "orders"),
        ("ordrs+2", "ordrs", "orders"),
        ("@revenu", "revenu", "revenue"),
        ("lonely custmers", "custmers", "customers"),
        ("tag:cor", "tag:cor", "core"),
        ("group:mart", "group:mart", "marts"),
        ("Orders", "Orders", "orders"),
    ],
)
def test_unknown_names_say_did_you_mean(select: str, culprit: str, suggestion: str) -> None:
    with pytest.raises(SelectionError) as info:
        resolve(GRAPH, select)
    message = str(info.value)
    assert culprit in message
    assert f"did you mean '{suggestion}'?" in message
    assert "\n" not in message
    assert info.value.exit_code == EXIT_USAGE == 2


def test_unknown_names_in_exclude_are_errors_too() -> None:
    with pytest.raises(SelectionError, match=r"revnue.*did you mean 'revenue'"):
        resolve(GRAPH, "orders+", exclude="revnue")


def test_a_name_with_nothing_close_gets_no_suggestion() -> None:
    with pytest.raises(SelectionError, match="zzzzzz") as info:
        resolve(GRAPH, "zzzzzz")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    "select",
    [
        "data/orders",
        "orders/..",
        "..",
        "../orders",
        "..\\orders",
        "/etc/passwd",
        "'orders'",
        '"orders"',
        "x;drop table runs",
        "orders;",
        "orders)--",
        "tag:",
        "group:",
        "tag:tag:core",
        "+",
        "@",
        "@+orders",
        "@2+orders",
        "orders++",
        "orders,",
        ",orders",
        "orders,,revenue",
        "orders.csv",
        "ord ers'",
        "orders%",
    ],
)
def test_invalid_selectors_are_selection_errors(select: str) -> None:
    with pytest.raises(SelectionError) as info:
        resolve(GRAPH, select)
    assert info.value.exit_code == 2
    assert "\n" not in str(info.value)


def test_invalid_exclude_is_a_selection_error() -> None:
    with pytest.raises(SelectionError, match="not valid"):
        resolve(GRAPH, "orders", exclude="x;drop table runs")


def test_parse_splits_union_of_intersections() -> None:
    terms = parse("2+orders+1 tag:core,group:marts @stg_* +revenue+")
    assert [[(a.kind, a.value, a.up, a.down, a.at) for a in term] for term in terms] == [
        [("name", "orders", 2, 1, False)],
        [("tag", "core", 0, 0, False), ("group", "marts", 0, 0, False)],
        [("glob", "stg_*", 0, 0, True)],
        [("name", "revenue", None, None, False)],
    ]
    assert parse(None) == []
    assert parse("") == []
    assert parse(["a", "b,c"]) == [
        [Atom("a", "name", "a")],
        [Atom("b", "name", "b"), Atom("c", "name", "c")],
    ]


def test_parse_does_not_need_a_graph_but_resolve_checks_names() -> None:
    assert parse("no_such_asset") == [[Atom("no_such_asset", "name", "no_such_asset")]]
    with pytest.raises(SelectionError):
        resolve(GRAPH, "no_such_asset")


# --- properties on random DAGs ------------------------------------------------------------

TAGS = ("red", "green", "blue")
GROUPS = ("g1", "g2", "g3")


def _node() -> pd.DataFrame:
    return pd.DataFrame()


class Dag:
    """A random DAG, its Graph (edges given with deps=), and its edges for reference."""

    def __init__(
        self,
        names: list[str],
        edges: set[tuple[str, str]],
        tags: Mapping[str, frozenset[str]],
        groups: Mapping[str, str],
    ) -> None:
        self.names = names
        self.edges = edges
        self.tags = tags
        self.groups = groups
        self.up: dict[str, set[str]] = {n: set() for n in names}
        self.down: dict[str, set[str]] = {n: set() for n in names}
        for u, v in edges:
            self.up[v].add(u)
            self.down[u].add(v)
        self.graph = Graph.build(
            asset(name=n, deps=sorted(self.up[n]), tags=sorted(tags[n]), group=groups[n])(_node)
            for n in names
        )

    def ancestors(self, name: str, depth: int | None = None) -> set[str]:
        return reach(self.up, name, depth)

    def descendants(self, name: str, depth: int | None = None) -> set[str]:
        return reach(self.down, name, depth)


def reach(adjacent: Mapping[str, set[str]], start: str, depth: int | None) -> set[str]:
    """Nodes at distance 1..depth (any distance when depth is None) by breadth-first search."""
    distance = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if depth is not None and distance[node] >= depth:
            continue
        for nxt in sorted(adjacent[node]):
            if nxt not in distance:
                distance[nxt] = distance[node] + 1
                queue.append(nxt)
    return set(distance) - {start}


@st.composite
def dags(draw: st.DrawFn) -> Dag:
    size = draw(st.integers(min_value=1, max_value=15))
    # names[i] is the i-th node of a hidden topological order; shuffled so that order is
    # not the alphabetical one
    names = draw(st.permutations([f"n{i}" for i in range(size)]))
    pairs = draw(
        st.sets(
            st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)).filter(
                lambda p: p[0] < p[1]
            ),
            max_size=size * 3,
        )
        if size > 1
        else st.just(set())
    )
    tags = {n: draw(st.frozensets(st.sampled_from(TAGS), max_size=2)) for n in names}
    groups = {n: draw(st.sampled_from(GROUPS)) for n in names}
    return Dag(list(names), {(names[i], names[j]) for i, j in pairs}, tags, groups)


def _render(at: bool, up: int | None, body: str, down: int | None) -> str:
    """The selector text: `@body`, or `[N]+body+[N]` where None is "all" and 0 is "none"."""
    if at:
        return f"@{body}"
    head = "" if up == 0 else ("+" if up is None else f"{up}+")
    tail = "" if down == 0 else ("+" if down is None else f"+{down}")
    return f"{head}{body}{tail}"


def atoms(dag: Dag) -> st.SearchStrategy[tuple[str, bool, int | None, str, int | None]]:
    """Selector atoms that match at least one node of `dag`: (text, at, up, body, down)."""
    tags = sorted({t for ts in dag.tags.values() for t in ts})
    bodies = [
        st.sampled_from(dag.names),
        st.sampled_from(sorted(set(dag.groups.values()))).map(lambda g: f"group:{g}"),
        st.sampled_from(dag.names).map(lambda n: f"{n[:2]}*"),
    ]
    if tags:
        bodies.append(st.sampled_from(tags).map(lambda t: f"tag:{t}"))
    depth = st.one_of(st.none(), st.integers(min_value=0, max_value=3))
    return st.tuples(st.booleans(), depth, st.one_of(*bodies), depth).map(
        lambda t: (_render(*t), *t)
    )


def reference(dag: Dag, at: bool, up: int | None, body: str, down: int | None) -> set[str]:
    """What an atom selects, computed independently of vibepiper's parser and walker."""
    if body.startswith("tag:"):
        matched = {n for n in dag.names if body[4:] in dag.tags[n]}
    elif body.startswith("group:"):
        matched = {n for n in dag.names if dag.groups[n] == body[6:]}
    elif body.endswith("*"):
        matched = {n for n in dag.names if n.startswith(body[:-1])}
    else:
        matched = {body}
    result = set(matched)
    for name in matched:
        if at:
            below = dag.descendants(name) | {name}
            result |= below
            for node in below:
                result |= dag.ancestors(node)
        else:
            if up != 0:
                result |= dag.ancestors(name, up)
            if down != 0:
                result |= dag.descendants(name, down)
    return result


def assert_topological(dag: Dag, names: list[str]) -> None:
    position = {n: i for i, n in enumerate(names)}
    assert len(position) == len(names), "duplicates in the selection"
    for u, v in dag.edges:
        if u in position and v in position:
            assert position[u] < position[v], f"{u} must come before {v} in {names}"


PROPERTY = settings(max_examples=100, deadline=None)


@PROPERTY
@given(dag=dags(), data=st.data())
def test_property_results_are_in_topological_order(dag: Dag, data: st.DataObject) -> None:
    everything = resolve(dag.graph)
    assert sorted(everything) == sorted(dag.names)
    assert_topological(dag, everything)
    a, b = data.draw(atoms(dag))[0], data.draw(atoms(dag))[0]
    for select in (a, f"{a} {b}", f"{a},{b}"):
        assert_topological(dag, resolve(dag.graph, select))


@PROPERTY
@given(dag=dags(), data=st.data())
def test_property_plus_name_is_the_name_and_its_ancestors(dag: Dag, data: st.DataObject) -> None:
    x = data.draw(st.sampled_from(dag.names))
    assert set(resolve(dag.graph, f"+{x}")) == {x} | dag.ancestors(x)
    assert set(resolve(dag.graph, f"{x}+")) == {x} | dag.descendants(x)
    assert set(resolve(dag.graph, f"+{x}+")) == {x} | dag.ancestors(x) | dag.descendants(x)


@PROPERTY
@given(dag=dags(), data=st.data())
def test_property_limited_depth_matches_a_reference_bfs(dag: Dag, data: st.DataObject) -> None:
    x = data.draw(st.sampled_from(dag.names))
    n = data.draw(st.integers(min_value=0, max_value=5))
    assert set(resolve(dag.graph, f"{n}+{x}")) == {x} | dag.ancestors(x, n)
    assert set(resolve(dag.graph, f"{x}+{n}")) == {x} | dag.descendants(x, n)


@PROPERTY
@given(dag=dags(), data=st.data())
def test_property_at_is_descendants_plus_all_their_ancestors(dag: Dag, data: st.DataObject) -> None:
    x = data.draw(st.sampled_from(dag.names))
    below = {x} | dag.descendants(x)
    expected = below.union(*(dag.ancestors(n) for n in below))
    assert set(resolve(dag.graph, f"@{x}")) == expected


@PROPERTY
@given(dag=dags(), data=st.data())
def test_property_any_atom_matches_the_reference(dag: Dag, data: st.DataObject) -> None:
    text, *parts = data.draw(atoms(dag))
    assert set(resolve(dag.graph, text)) == reference(dag, *parts)


@PROPERTY
@given(dag=dags(), data=st.data())
def test_property_union_intersection_and_exclude(dag: Dag, data: st.DataObject) -> None:
    a, b = data.draw(atoms(dag))[0], data.draw(atoms(dag))[0]
    ra, rb = set(resolve(dag.graph, a)), set(resolve(dag.graph, b))
    union = resolve(dag.graph, f"{a} {b}")
    assert union == resolve(dag.graph, f"{b} {a}")
    assert set(union) == ra | rb
    assert set(resolve(dag.graph, f"{a},{b}")) == ra & rb
    assert resolve(dag.graph, f"{a},{b}") == resolve(dag.graph, f"{b},{a}")
    assert set(resolve(dag.graph, a, exclude=b)) == ra - rb
    assert set(resolve(dag.graph, exclude=b)) == set(dag.names) - rb


@PROPERTY
@given(dag=dags(), data=st.data())
def test_property_ancestors_of_many_is_the_union_of_each_ones(
    dag: Dag, data: st.DataObject
) -> None:
    names = data.draw(st.sets(st.sampled_from(dag.names)))
    assert dag.graph.ancestors_of(names) == set().union(*(dag.ancestors(n) for n in names))
    assert dag.graph.ancestors_of(iter(names)) == dag.graph.ancestors_of(names)
