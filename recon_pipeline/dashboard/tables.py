"""Long tables: one SQL per table, shown a page at a time with sorting, exported whole.

A `Table` is a query (every column it shows is a column of the query) and its columns with
their Chinese headers and kinds. The page shows `page_size` rows sorted by a column the user
picked (`?sort=<key>&dir=asc|desc&page=N`, validated against the table's own columns, so no
user text reaches the SQL); the export (`?format=xlsx|csv`) runs the same query with the same
filters and order, without the page limit. A second table on the same page takes a `prefix`
for its own parameters (`?r_sort=...&r_page=2`) and is exported with `?table=<prefix>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urlencode

from recon_pipeline.dashboard.export import EXCEL_MAX_ROWS

PAGE_SIZE = 50


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: str = "text"  # text, money, int, score, percent, datetime, date, days
    sortable: bool = True
    export: bool = True
    display: Callable[[Any], Any] | None = None  # code -> name (a region, a status), page and export
    link: str | None = None  # "/orders/{order_id}": the cell links there (page only)


@dataclass(frozen=True)
class Table:
    title: str  # sheet and file name of the export
    columns: tuple[Column, ...]
    sql: str
    params: tuple = ()
    default_sort: str = ""
    default_desc: bool = False
    tiebreak: tuple[str, ...] = ()  # columns that make the order total (stable paging)
    page_size: int = PAGE_SIZE
    prefix: str = ""  # query parameter prefix of a second table on one page

    def column(self, key: str) -> Column | None:
        return next((c for c in self.columns if c.key == key), None)

    def order_by(self, sort: str, desc: bool) -> str:
        direction = "DESC" if desc else "ASC"
        keys = [f'"{sort}" {direction} NULLS LAST'] + [f'"{k}"' for k in self.tiebreak if k != sort]
        return ", ".join(keys)

    @property
    def export_columns(self) -> list[Column]:
        return [c for c in self.columns if c.export]


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    number: int
    size: int
    sort: str
    desc: bool
    query: dict[str, str] = field(default_factory=dict)  # the current filters, kept in links
    prefix: str = ""  # Table.prefix

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_row(self) -> int:
        return (self.number - 1) * self.size + 1 if self.total else 0

    @property
    def last_row(self) -> int:
        return min(self.number * self.size, self.total)

    def url(self, **changes: Any) -> str:
        """This page's address with some parameters changed (None removes one)."""
        p = self.prefix
        params = {**self.query, p + "sort": self.sort, p + "dir": "desc" if self.desc else "asc", p + "page": str(self.number)}
        for key, value in changes.items():
            key = p + key if key in ("sort", "dir", "page") else key
            if value is None:
                params.pop(key, None)
            else:
                params[key] = str(value)
        if params.get(p + "page") == "1":
            params.pop(p + "page")
        return "?" + urlencode({k: v for k, v in params.items() if v != ""})

    def sort_url(self, key: str) -> str:
        """Clicking a header: sort by it (descending first for figures), again to flip."""
        if key == self.sort:
            return self.url(sort=key, dir="asc" if self.desc else "desc", page=1)
        return self.url(sort=key, dir="asc", page=1)

    def export_url(self, fmt: str) -> str:
        return self.url(format=fmt, page=None, table=self.prefix or None)


def sort_choice(table: Table, params: Mapping[str, str]) -> tuple[str, bool]:
    column = table.column(params.get(table.prefix + "sort", ""))
    sort = column.key if column and column.sortable else table.default_sort
    direction = params.get(table.prefix + "dir", "")
    desc = direction == "desc" if direction in ("asc", "desc") else (table.default_desc if sort == table.default_sort else False)
    return sort, desc


def fetch_page(reader, table: Table, params: Mapping[str, str], query: Mapping[str, str]) -> Page:
    """The requested page of the table (page numbers past the end show the last page)."""
    size = table.page_size
    sort, desc = sort_choice(table, params)
    total = int(reader.value(f"SELECT count(*) FROM ({table.sql}) AS counted", list(table.params)) or 0)
    pages = max(1, -(-total // size))
    try:
        number = min(max(int(params.get(table.prefix + "page", "1")), 1), pages)
    except ValueError:
        number = 1
    rows = reader.rows(
        f"SELECT * FROM ({table.sql}) AS shown ORDER BY {table.order_by(sort, desc)} LIMIT ? OFFSET ?",
        list(table.params) + [size, (number - 1) * size],
    )
    return Page(rows=rows, total=total, number=number, size=size, sort=sort, desc=desc, query=dict(query),
                prefix=table.prefix)


def export_rows(reader, table: Table, params: Mapping[str, str], batch: int = 10_000) -> Iterator[tuple]:
    """Every row of the table in the page's order, export columns only, streamed in batches."""
    sort, desc = sort_choice(table, params)
    columns = ", ".join(f'"{c.key}"' for c in table.export_columns)
    cursor = reader.conn.execute(
        f"SELECT {columns} FROM ({table.sql}) AS exported ORDER BY {table.order_by(sort, desc)} LIMIT {EXCEL_MAX_ROWS}",
        list(table.params),
    )
    displays = [c.display for c in table.export_columns]
    while chunk := cursor.fetchmany(batch):
        for row in chunk:
            yield tuple(show(value) if show else value for show, value in zip(displays, row))
