"""Dashboard fixtures: the published fixture mart, an HTTP client that keeps cookies (CSRF,
sessions) like a browser, and a real headless Chromium (Playwright on Debian's chromium)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from recon_pipeline.dashboard import DashboardConfig
from recon_pipeline.publish.publication import publish_mart
from tests import REPO_ROOT
from tests.conftest import AS_OF, build_fixture_warehouse

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
RUNBOOK = "# 处理手册\n\n" + "".join(
    f"## {alert_type}（说明）\n\n处理 {alert_type} 的步骤。\n\n"
    for alert_type in ("amount_mismatch", "receipt_not_written_off", "salesperson_discrepancy",
                       "cutoff_unarchived", "approval_stalled", "match_rate_low")
)


@pytest.fixture
def published(tmp_path) -> Path:
    warehouse = build_fixture_warehouse(tmp_path / "recon.duckdb")
    return publish_mart(warehouse, as_of=AS_OF).published_path


@pytest.fixture
def config(tmp_path, published) -> DashboardConfig:
    runbook = tmp_path / "runbook.md"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    return DashboardConfig(published_path=published, landing_dir=tmp_path / "landing", runbook_path=runbook)


class Client:
    """urllib with a cookie jar, no redirects followed unless asked; `form()` posts a form the
    way a browser would after loading the page (it carries the page's CSRF token)."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def url(self, path: str) -> str:
        return self.base + urllib.parse.quote(path, safe="/?=&%:;,+@")

    def get(self, path: str, headers: dict | None = None) -> tuple[int, str, dict]:
        return self._open(urllib.request.Request(self.url(path), headers=headers or {}))

    def get_bytes(self, path: str) -> tuple[int, bytes, dict]:
        with self.opener.open(self.url(path), timeout=30) as response:
            return response.status, response.read(), dict(response.headers)

    def post(self, path: str, data: dict, headers: dict | None = None) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(self.url(path), data=body, headers=headers or {}))

    def csrf(self, page: str = "/") -> str:
        status, body, _ = self.get(page)
        match = re.search(r'name="csrftoken" value="([^"]+)"', body)
        assert match, f"no CSRF token on {page} ({status})"
        return match.group(1)

    def form(self, page: str, path: str, data: dict, headers: dict | None = None) -> tuple[int, str, dict]:
        return self.post(path, {"csrftoken": self.csrf(page), **data}, headers)

    def _open(self, request) -> tuple[int, str, dict]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode("utf-8"), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", errors="replace"), dict(error.headers)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("需要 Debian 的 chromium（apt-get install -y chromium）才能运行浏览器测试")
    sync_api = pytest.importorskip("playwright.sync_api", reason="需要 playwright（pip install playwright）")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    page.on("dialog", lambda dialog: (page.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    # A download ends its navigation request with ERR_ABORTED: that is the browser, not a failure.
    page.on("requestfailed", lambda request: "format=" not in request.url and page.problems.append(f"failed: {request.url}"))
    page.on("response", lambda response: response.status >= 400 and page.problems.append(f"{response.status}: {response.url}"))
    yield page
    context.close()


def visit(page, url: str, screenshot: str):
    response = page.goto(url)
    assert response.status == 200, (url, response.status)
    page.wait_for_load_state("load")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{screenshot}.png"), full_page=True)
    return page


def cells(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
