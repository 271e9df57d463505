"""Selection syntax, as in dbt: parse once into terms, then resolve against a graph.

select   := term (WHITESPACE term)*        union
term     := atom ("," atom)*               intersection
atom     := ["@"] [[N] "+"] body ["+" [N]]
body     := NAME | GLOB | "tag:" T | "group:" G
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from vibepiper.errors import SelectionError, did_you_mean
from vibepiper.graph.graph import Graph

_ATOM = re.compile(
    r"^(?P<at>@)?(?:(?P<up>\d*)\+)?(?P<body>(?:tag:|group:)?[A-Za-z0-9_*?\[\]!-]+)"
    r"(?:\+(?P<down>\d*))?$"
)
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Atom:
    """One selector atom: what it matches, and how far up or down the graph it reaches."""

    text: str
    kind: str  # "name" | "glob" | "tag" | "group"
    value: str
    up: int | None = 0  # 0: not at all; None: all the way
    down: int | None = 0
    at: bool = False


def parse_atom(text: str) -> Atom:
    match = _ATOM.match(text)
    if not match:
        raise SelectionError(
            f"selector '{text}' is not valid",
            "use an asset name, a glob (stg_*), tag:T or group:G, optionally with +, N+ or @",
        )
    body = match["body"]
    kind, value = "name", body
    if body.startswith(("tag:", "group:")):
        kind, _, value = body.partition(":")
    elif _GLOB_CHARS & set(body):
        kind = "glob"
    if not value:
        raise SelectionError(f"selector '{text}' has an empty {kind}", f"write {kind}:NAME")
    if match["at"] and match["up"] is not None:
        raise SelectionError(
            f"selector '{text}' combines @ with a leading +", "use either @name or +name"
        )
    return Atom(
        text=text,
        kind=kind,
        value=value,
        up=_depth(match["up"]),
        down=_depth(match["down"]),
        at=bool(match["at"]),
    )


def _depth(group: str | None) -> int | None:
    if group is None:
        return 0
    if len(group) > 6:
        raise SelectionError(
            f"a depth of {len(group)} digits in a selector is not valid",
            "give how many levels, e.g. 2+orders",
        )
    return int(group) if group else None


def parse(select: str | Iterable[str] | None) -> list[list[Atom]]:
    """Split a selection into a union of intersections of atoms."""
    if select is None:
        return []
    text = select if isinstance(select, str) else " ".join(select)
    return [_parse_term(term) for term in text.split()]


def _parse_term(term: str) -> list[Atom]:
    """One intersection, `a,b,...`."""
    parts = term.split(",")
    if "" in parts:
        raise SelectionError(
            f"selector '{term}' has nothing on one side of a comma",
            "write a,b for the assets in both a and b, or a b for those in either",
        )
    return [parse_atom(part) for part in parts]


def _match(atom: Atom, graph: Graph) -> set[str]:
    names = graph.assets
    if atom.kind == "name":
        if atom.value not in names:
            raise SelectionError(
                f"unknown asset '{atom.value}' in selector '{atom.text}'"
                f"{did_you_mean(atom.value, names)}",
                "run `vibepiper list` to see the assets",
            )
        return {atom.value}
    if atom.kind == "glob":
        found = {n for n in names if fnmatch.fnmatchcase(n, atom.value)}
    elif atom.kind == "tag":
        found = {n for n, d in names.items() if atom.value in d.tags}
    else:
        found = {n for n, d in names.items() if d.group == atom.value}
    if not found:
        known = (
            {t for d in names.values() for t in d.tags}
            if atom.kind == "tag"
            else ({d.group for d in names.values()} if atom.kind == "group" else set(names))
        )
        raise SelectionError(
            f"selector '{atom.text}' matches no asset{did_you_mean(atom.value, known)}",
            "run `vibepiper list` to see the assets, tags and groups",
        )
    return found


def _resolve_atom(atom: Atom, graph: Graph) -> set[str]:
    result: set[str] = set()
    for name in _match(atom, graph):
        result.add(name)
        if atom.at:
            below = graph.descendants(name) | {name}
            result |= below | graph.ancestors_of(below)
            continue
        if atom.up != 0:
            result |= graph.ancestors(name, atom.up)
        if atom.down != 0:
            result |= graph.descendants(name, atom.down)
    return result


def _resolve_term(term: list[Atom], graph: Graph) -> set[str]:
    result = _resolve_atom(term[0], graph)
    for atom in term[1:]:
        result &= _resolve_atom(atom, graph)
    return result


def resolve(
    graph: Graph,
    select: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
) -> list[str]:
    """The selected asset names in topological order. No selection means every asset."""
    terms = parse(select)
    chosen: set[str] = set()
    if not terms:
        chosen = set(graph.assets)
    for term in terms:
        chosen |= _resolve_term(term, graph)
    for term in parse(exclude):
        chosen -= _resolve_term(term, graph)
    return graph.sorted(chosen)


def selection_words(text: str) -> tuple[list[str], list[str]] | None:
    """A selection as the `runs` and `ticks` tables record it (`a b --exclude c`), as its
    select and exclude words; None if it is not one (it is read from the catalog: a word
    that looks like an option is refused)."""
    select: list[str] = []
    exclude: list[str] = []
    words = text.split()
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--exclude" and i + 1 < len(words):
            exclude.append(words[i + 1])
            i += 2
            continue
        if word.startswith("-"):
            return None
        select.append(word)
        i += 1
    return select, exclude
