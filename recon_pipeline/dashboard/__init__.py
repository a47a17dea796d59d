"""The reconciliation dashboard (对账看板): a read-only web view of the published mart.

    from recon_pipeline.dashboard import serve
    serve("/data/recon.published.duckdb", landing_dir="/data/landing", port=8765, token=None)

`create_app(DashboardConfig(...))` gives the ASGI app itself (tests, other servers).
"""

from __future__ import annotations

import os
from pathlib import Path

from recon_pipeline.dashboard.app import DashboardConfig, create_app
from recon_pipeline.settings import Settings, load_settings

__all__ = ["DashboardConfig", "create_app", "serve"]


def serve(
    published_path: str | os.PathLike,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    landing_dir: str | os.PathLike | None = None,
    settings: Settings | None = None,
) -> None:
    """Run the dashboard until interrupted (bound to 127.0.0.1:8765 unless told otherwise).

    The token defaults to the environment variable named by `dashboard.token_env`
    (RECON_DASHBOARD_TOKEN); with none, the dashboard is open to whoever reaches the port.
    """
    import uvicorn

    settings = settings or load_settings()
    section = settings.raw.get("dashboard") or {}
    token = token or os.environ.get(section.get("token_env", "RECON_DASHBOARD_TOKEN")) or None
    config = DashboardConfig.from_settings(Path(published_path), landing_dir, token, settings)
    uvicorn.run(
        create_app(config),
        host=host or section.get("host", "127.0.0.1"),
        port=int(port or section.get("port", 8765)),
        log_level="warning",
    )
