"""Tables for logs are written directly (thousands of rows in milliseconds), and must read
exactly as rich draws them, which terminals and earlier versions show."""

from __future__ import annotations

import io
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from vibepiper.reporting import console

# Without a backslash: rich's markup escaping doubles one at the end of a cell, which the
# plain table shows as it is (see below).
TEXT = st.text(
    alphabet=string.ascii_letters + string.digits + " _-.,:;[]()/*+=@#$%^&!?'\"<>~`{}|",
    max_size=30,
)


def rich_table(names: list[str], rows: list[dict[str, object]]) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.ASCII2, header_style="bold", pad_edge=False, show_edge=False)
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(console._cell(row.get(name)) for name in names))
    out = io.StringIO()
    Console(file=out, width=200, highlight=False, emoji=False).print(table)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.from_regex(r"[a-z_]{1,12}", fullmatch=True), min_size=1, max_size=6, unique=True
    ).flatmap(
        lambda names: st.tuples(
            st.just(names),
            st.lists(
                st.fixed_dictionaries(
                    {n: st.one_of(st.none(), TEXT, st.lists(TEXT, max_size=3)) for n in names}
                ),
                max_size=8,
            ),
        )
    )
)
def test_the_plain_table_is_the_table_rich_draws(table: tuple[list[str], list[dict]]) -> None:
    names, rows = table
    out = io.StringIO()  # not a terminal
    console.print_table(rows, names, out)
    assert out.getvalue() == rich_table(names, rows)


def test_what_only_rich_can_draw_still_goes_to_rich() -> None:
    for cell in ("two\nlines", "naïve", "漢字", "x" * 190):
        rows = [{"a": cell, "b": "y"}]
        assert console._plain_table(["a", "b"], [[cell, "y"]]) is None
        out = io.StringIO()
        console.print_table(rows, ["a", "b"], out)
        assert out.getvalue() == rich_table(["a", "b"], rows)


def test_thousands_of_rows_are_written_directly() -> None:
    rows = [{"name": f"asset_{i}", "deps": [f"asset_{i - 1}"] if i else None} for i in range(4000)]
    out = io.StringIO()
    console.print_table(rows, ["name", "deps"], out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4002
    assert lines[1] == "-" * 11 + "+" + "-" * 11
    assert lines[-1] == "asset_3999 | asset_3998"


def test_a_backslash_is_shown_as_it_is() -> None:
    out = io.StringIO()
    console.print_table([{"path": "C:\\temp\\"}], ["path"], out)
    assert out.getvalue().splitlines()[2] == "C:\\temp\\"


def test_rich_draws_emoji_codes_in_data_as_they_are() -> None:
    """A cell's ':smile:' or ':M:' is data: rich (drawing a table with a multi-line cell)
    shows it as written, not as an emoji."""
    out = io.StringIO()
    console.print_table([{"a": ":smile: :M:", "b": "two\nlines"}], ["a", "b"], out)
    assert ":smile: :M:" in out.getvalue()
