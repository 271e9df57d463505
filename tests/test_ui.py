"""The web UI of `vibepiper serve` (SPEC §9): the real server as a subprocess, its JSON API
over HTTP, and its pages in a real headless Chromium (skipped, saying why, when chromium
or chromedriver is missing; .ci/run installs them)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli, start_cli, write_project
from tests.helpers.browser import CHROMEDRIVER, CHROMIUM, chromium

ARTIFACTS = REPO / "test-artifacts"

ASSETS = """
import time
import pandas as pd
from vibepiper import asset, expect

@asset(description="<script>window.hacked = 1</script><b>bold?</b>", tags=["core"])
def first() -> pd.DataFrame:
    return pd.DataFrame({"note": ["<img src=x onerror=alert(1)>", "plain"], "n": [1, 2]})

@asset(tags=["core"])
def second(first: pd.DataFrame) -> pd.DataFrame:
    return first.assign(m=first.n * 2)

@asset(checks=[expect.row_count(max=1)])
def third(second: pd.DataFrame) -> pd.DataFrame:
    return second

@asset
def slow_a() -> pd.DataFrame:
    time.sleep(1.5)
    return pd.DataFrame({"x": [1]})

@asset
def slow_b(slow_a: pd.DataFrame) -> pd.DataFrame:
    time.sleep(1.5)
    return slow_a
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "proj", {"shop": ASSETS})
    run_cli(root, "materialize", "first", "second", "third")  # third fails its check
    return root


class Served:
    def __init__(self, root: Path, *args: str) -> None:
        self.process = start_cli(root, "serve", "--port", "0", *args)
        assert self.process.stdout is not None
        line = ""
        deadline = time.monotonic() + 60
        while not line.startswith("UI: ") and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                raise AssertionError(self.process.stderr.read() if self.process.stderr else "")
        self.url = line.removeprefix("UI: ").strip().rstrip("/")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def api(self, path: str) -> Any:
        status, body = self.get("/api" + path)
        assert status == 200, body
        return json.loads(body)

    def post(
        self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        body = urllib.parse.urlencode(fields).encode()
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stop(self) -> int:
        self.process.terminate()
        self.process.communicate(timeout=60)
        return self.process.returncode


@pytest.fixture
def served(shop: Path) -> Iterator[Served]:
    server = Served(shop, "--no-schedules")
    yield server
    server.stop()


def test_every_page_and_its_api_answers(served: Served) -> None:
    for path in ("/", "/runs", "/assets", "/assets/first", "/lineage", "/checks"):
        status, body = served.get(path)
        assert status == 200, (path, body)
        assert "<nav>" in body
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", body)  # nothing from outside
    assert [r["status"] for r in served.api("/runs")["runs"]] == ["failed"]
    listed = {a["name"]: a for a in served.api("/assets?select=tag:core")["assets"]}
    assert sorted(listed) == ["first", "second"] and listed["first"]["fresh"]
    first = served.api("/assets/first")
    assert first["preview"]["rows"][0][0] == "<img src=x onerror=alert(1)>"
    assert first["preview"]["columns"] == [
        {"name": "note", "type": "large_string"},
        {"name": "n", "type": "int64"},
    ]
    assert first["downstream"] == ["second"]
    lineage = served.api("/lineage?select=%2Bthird")
    assert sorted(n["name"] for n in lineage["nodes"]) == ["first", "second", "third"]
    assert sorted(map(tuple, lineage["edges"])) == [("first", "second"), ("second", "third")]
    failing = [c for c in served.api("/overview")["failing_checks"]]
    assert [c["asset"] for c in failing] == ["third"]


def test_html_in_descriptions_data_and_messages_is_shown_escaped(served: Served) -> None:
    status, body = served.get("/assets/first")
    assert status == 200
    assert "<script>window.hacked" not in body
    assert "&lt;script&gt;window.hacked = 1&lt;/script&gt;" in body
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body


@pytest.mark.parametrize(
    ("path", "code", "said"),
    [
        ("/assets/nope", 404, "no asset &#39;nope&#39;"),
        ("/runs/20260101T000000.000-abcdef", 404, "no run"),
        ("/api/assets/nope", 404, "no asset"),
        ("/lineage?select=%2Bnope", 400, "unknown asset"),
        ("/assets?select=tag%3A", 400, ""),
        ("/runs?page=0", 400, "page=0 is not valid"),
        ("/runs?page=99", 400, "past the last page"),
        ("/runs?per_page=100000", 400, "per_page=100000 is not valid"),
        ("/runs?per_page=abc", 400, "is not a number"),
        ("/api/runs?page=-1", 400, "is not a number"),
        ("/runs?page=%C2%B2", 400, "is not a number"),  # a superscript two is a digit to Python
    ],
)
def test_bad_requests_are_404_and_400_with_the_reason(
    served: Served, path: str, code: int, said: str
) -> None:
    status, body = served.get(path)
    assert status == code, body
    assert said in body


def test_materializing_needs_the_csrf_token_and_is_refused_read_only(shop: Path) -> None:
    server = Served(shop, "--no-schedules")
    try:
        status, _ = server.post("/materialize", {"select": "slow_a"})
        assert status == 403
        status, _ = server.post("/materialize", {"select": "slow_a", "csrf": "x.y"})
        assert status == 403
        status, _ = server.post("/materialize", {"select": "slow_a", "csrf": "é.é"})
        assert status == 403
        _, page = server.get("/")
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        status, body = server.post("/api/materialize", {"select": "nope", "csrf": token[1]})
        assert status == 400 and "unknown asset" in body
        fields = {"select": "slow_a", "csrf": token[1]}
        status, body = server.post("/materialize", fields, {"Origin": "http://evil.example"})
        assert status == 403 and "another site" in body
        status, body = server.post("/api/materialize", {"select": "slow_a", "csrf": token[1]})
        assert status == 202, body
        run_id = json.loads(body)["run_id"]
        deadline = time.monotonic() + 60
        run = None
        while time.monotonic() < deadline:
            if server.get(f"/api/runs/{run_id}")[0] == 200:
                run = server.api(f"/runs/{run_id}")
                if not run["live"]:
                    break
            time.sleep(0.3)
        assert run is not None and run["run"]["status"] == "succeeded"
        assert [m["asset"] for m in run["assets"]] == ["slow_a"]
    finally:
        server.stop()
    read_only = Served(shop, "--no-schedules", "--read-only")
    try:
        _, page = read_only.get("/")
        assert 'name="csrf"' not in page
        status, body = read_only.post("/materialize", {"select": "slow_a", "csrf": "a.b"})
        assert status == 403 and "read-only" in body
    finally:
        read_only.stop()


def test_the_ui_binds_to_loopback_and_warns_about_other_addresses(shop: Path) -> None:
    server = Served(shop, "--no-schedules")
    try:
        assert server.url.startswith("http://127.0.0.1:")
        port = server.url.rsplit(":", 1)[1]
        for host, code in ((f"localhost:{port}", 200), (f"evil.example:{port}", 400)):
            request = urllib.request.Request(server.url + "/api/checks", headers={"Host": host})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            assert status == code, host  # a DNS-rebound name is refused
    finally:
        server.stop()
    process = start_cli(shop, "serve", "--no-schedules", "--host", "0.0.0.0", "--port", "0")
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("UI: http://0.0.0.0:")
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert "warning: the UI listens on 0.0.0.0, reachable from other machines" in err


def test_a_taken_port_is_one_line_and_exit_2(served: Served, shop: Path) -> None:
    port = served.url.rsplit(":", 1)[1]
    other = write_project(shop.parent / "other", {"shop": ASSETS})
    done = run_cli(other, "serve", "--no-schedules", "--port", port, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"cannot serve the UI on 127.0.0.1:{port}" in line


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium/chromedriver (Debian packages chromium, chromium-driver)")
    driver = chromium(console=True)
    yield driver
    driver.quit()


def console_errors(browser: Any) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_every_page_loads_in_a_browser_without_console_errors(served: Served, browser: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pages = {
        "overview": "/",
        "runs": "/runs",
        "assets": "/assets?select=tag:core",
        "asset": "/assets/first",
        "lineage": "/lineage",
        "checks": "/checks",
        "not-found": "/assets/nope",
    }
    for name, path in pages.items():
        browser.get(served.url + path)
        assert browser.find_element("css selector", "nav").is_displayed()
        errors = [e for e in console_errors(browser) if "404" not in e or name != "not-found"]
        assert errors == [], (name, errors)
        assert browser.save_screenshot(str(ARTIFACTS / f"ui-{name}.png"))
    assert browser.execute_script("return window.hacked === undefined")


def test_lineage_clicks_through_to_the_asset_page_and_a_url_reproduces_the_view(
    served: Served, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served.url + "/lineage?select=%2Bthird")
    nodes = browser.find_elements(By.CSS_SELECTOR, "g.node")
    assert sorted(n.get_attribute("data-asset") for n in nodes) == ["first", "second", "third"]
    assert "failed" in browser.find_element(
        By.CSS_SELECTOR, 'g.node[data-asset="third"]'
    ).get_attribute("class")
    browser.find_element(By.CSS_SELECTOR, 'g.node[data-asset="second"]').click()
    WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/assets/second"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "second"
    browser.get(served.url + "/assets")
    box = browser.find_element(By.NAME, "select")
    box.send_keys("tag:core")
    box.submit()
    WebDriverWait(browser, 10).until(lambda b: "select=tag" in b.current_url)
    shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table td:first-child a")]
    copied = browser.current_url
    browser.get(served.url + "/")
    browser.get(copied)  # a copied URL shows the same view
    again = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table td:first-child a")]
    assert shown == again == ["first", "second"]


def test_a_run_started_from_the_command_line_shows_up_live(
    served: Served, shop: Path, browser: Any
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def wait(seconds: float) -> Any:  # (the page swaps its rows as it refreshes itself)
        return WebDriverWait(browser, seconds, 0.1, [StaleElementReferenceException])

    browser.get(served.url + "/runs")
    before = len(browser.find_elements(By.CSS_SELECTOR, "table.runs td a"))
    run = start_cli(shop, "materialize", "slow_a", "slow_b", stdout=subprocess.DEVNULL)
    try:
        wait(15).until(  # without a reload: the page refreshes itself
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "table.runs td a")) > before
        )
        wait(10).until(
            lambda b: b.find_elements(By.CSS_SELECTOR, "table.runs td a")[0].click() or True
        )
        wait(10).until(lambda b: "/runs/" in b.current_url)

        def state(b: Any, asset: str) -> str:
            found = b.find_elements(
                By.CSS_SELECTOR, f'#run-assets tr[data-asset="{asset}"] .status'
            )
            return found[0].text if found else ""

        wait(10).until(lambda b: state(b, "slow_b") == "pending")
        wait(10).until(lambda b: state(b, "slow_a") == "succeeded")
        wait(10).until(  # it changes state, still without a reload
            lambda b: state(b, "slow_b") == "succeeded"
        )
        wait(10).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#run-status .status").text == "succeeded"
        )
        states = [s.text for s in browser.find_elements(By.CSS_SELECTOR, "#run-assets .status")]
        assert states == ["succeeded", "succeeded"]
        assert console_errors(browser) == []
        assert browser.save_screenshot(str(ARTIFACTS / "ui-run.png"))
    finally:
        run.wait(timeout=60)
