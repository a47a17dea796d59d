"""The 业绩确认单 page of the dashboard: /salespeople/<salesperson_id>/statement?period=YYYY-MM[&format=xlsx].

The statement itself is built by `recon_pipeline.close.statement` from the published file;
this module only turns it into an HTML page or an XLSX download.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from recon_pipeline.as_of import last_closed_periods
from recon_pipeline.close.export import statement_filename, statement_xlsx
from recon_pipeline.close.periods import CloseError
from recon_pipeline.close.statement import build_statement
from recon_pipeline.dashboard.export import XLSX_MEDIA_TYPE
from recon_pipeline.settings import Settings


def statement_link(salesperson_id: str, period: str | None = None, xlsx: bool = False) -> str:
    """The URL of a salesperson's statement (the link the salesperson's page shows)."""
    query = []
    if period:
        query.append(f"period={quote(period)}")
    if xlsx:
        query.append("format=xlsx")
    return f"/salespeople/{quote(salesperson_id)}/statement" + ("?" + "&".join(query) if query else "")


def statement_context(request: Request, reader, as_of, settings: Settings) -> dict | Response:
    """The page's context, or the XLSX file when `format=xlsx`; a CloseError becomes the page's message."""
    salesperson_id = request.path_params["salesperson_id"]
    period = (request.query_params.get("period") or "").strip()[:10]
    if not period and as_of is not None:
        period = last_closed_periods(as_of, settings.cutoff_hour, 1)[0]
    periods = [row[0] for row in reader.conn.execute(
        "SELECT DISTINCT period FROM mart.salesperson_period_summary WHERE salesperson_id = ? ORDER BY period DESC",
        [salesperson_id],
    ).fetchall()] if reader.has("mart.salesperson_period_summary") else []
    try:
        statement = build_statement(reader.conn, salesperson_id, period, settings)
    except CloseError as error:
        return {"statement": None, "error": str(error), "salesperson_id": salesperson_id, "period": period,
                "periods": periods, "link": statement_link, "status_code": 404}
    if request.query_params.get("format") == "xlsx":
        name = statement_filename(statement)
        return Response(statement_xlsx(statement), media_type=XLSX_MEDIA_TYPE, headers={
            "Content-Disposition": f"attachment; filename=\"statement.xlsx\"; filename*=UTF-8''{quote(name)}"})
    return {"statement": statement, "error": None, "salesperson_id": salesperson_id, "period": statement.period,
            "periods": periods, "link": statement_link, "status_code": 200}
