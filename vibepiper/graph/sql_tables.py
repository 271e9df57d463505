"""The tables a DuckDB query reads, found by DuckDB's own parser (never by pattern)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from vibepiper import engine


@lru_cache(maxsize=1024)
def tables_read(query: str) -> frozenset[str]:
    """The names of the tables `query` reads (common table expressions left out); none
    for a query DuckDB cannot parse (it fails when run, with DuckDB's message)."""
    con = engine.connect()
    try:
        found = con.execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    except Exception:
        return frozenset()
    finally:
        con.close()
    tree = json.loads(found[0]) if found and found[0] else {}
    if not isinstance(tree, dict) or tree.get("error"):
        return frozenset()
    tables: set[str] = set()
    ctes: set[str] = set()
    _walk(tree, tables, ctes)
    return frozenset(tables - ctes)


def _walk(node: Any, tables: set[str], ctes: set[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE" and isinstance(node.get("table_name"), str):
            tables.add(node["table_name"])
        for key, value in node.items():
            if key == "cte_map" and isinstance(value, dict):
                ctes.update(m["key"] for m in value.get("map", []) if isinstance(m, dict))
            _walk(value, tables, ctes)
    elif isinstance(node, list):
        for value in node:
            _walk(value, tables, ctes)
