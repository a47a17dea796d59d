"""The reconciliation dashboard (对账看板): finance's workbench over the published mart.

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


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class DashboardRefused(RuntimeError):
    """The dashboard will not start this way (message in Chinese)."""


def serve(
    published_path: str | os.PathLike,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    landing_dir: str | os.PathLike | None = None,
    settings: Settings | None = None,
    echo=lambda line: print(line, flush=True),
) -> None:
    """Run the dashboard until interrupted (bound to 127.0.0.1:8765 unless told otherwise).

    The token defaults to the environment variable named by `dashboard.token_env`
    (RECON_DASHBOARD_TOKEN). With neither accounts nor a token the dashboard is open to
    whoever reaches the port, so it then only binds to localhost.
    """
    import uvicorn

    settings = settings or load_settings()
    section = settings.raw.get("dashboard") or {}
    token = token or os.environ.get(section.get("token_env", "RECON_DASHBOARD_TOKEN")) or None
    config = DashboardConfig.from_settings(Path(published_path), landing_dir, token, settings)
    host = host or section.get("host", "127.0.0.1")
    port = int(port or section.get("port", 8765))
    if config.single_user and not config.token and host not in LOCAL_HOSTS:
        raise DashboardRefused(
            f"看板未配置账号（dashboard.accounts）也没有访问令牌（--token），不能绑定到 {host}：请配置其一，或只在本机（127.0.0.1）打开"
        )
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    mode = ("账号登录（" + "、".join(sorted(config.accounts)) + "）") if config.accounts else ("访问令牌" if config.token else "单用户模式（仅本机）")
    echo(f"销售对账看板已启动: {url}  （{mode}；按 Ctrl+C 停止）")
    if config.token and config.single_user:
        echo(f"带令牌打开: {url}?token=<令牌>")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")
