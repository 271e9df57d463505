"""`vibepiper docs`: the static site, checked in a real headless browser (Debian's chromium
and chromedriver, installed by .ci/run); skipped with the reason when they are missing."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from vibepiper import Project

from .conftest import copy_example, run_cli
from .helpers.browser import CHROMEDRIVER, CHROMIUM, chromium

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = copy_example(tmp_path_factory.mktemp("shop"))
    assert run_cli(root, "materialize").returncode == 0
    out = root / "site"
    proc = run_cli(root, "docs", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return root, out


def test_the_site_is_self_contained(site: tuple[Path, Path]) -> None:
    root, out = site
    index = (out / "index.html").read_text()
    assert "http://" not in index.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in index and "<link" not in index and "src=" not in index
    pages = sorted(p.stem for p in (out / "assets").glob("*.html"))
    assert pages == sorted(Project(root).assets)
    orders = (out / "assets" / "orders.html").read_text()
    assert "<h3>Schema</h3>" in orders and "amount_is_sum_of_methods" in orders
    assert 'href="stg_orders.html"' in orders


def test_serve(site: tuple[Path, Path]) -> None:
    root, out = site
    port = 18765
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vibepiper",
            "docs",
            "--out",
            str(out),
            "--serve",
            "--port",
            str(port),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    assert b'id="graph"' in page.read()
                    break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the site was not served")
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="no chromium/chromedriver (Debian packages chromium, chromium-driver;"
    " .ci/run installs them)",
)
def test_the_graph_in_a_real_browser(site: tuple[Path, Path]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root, out = site
    graph = Project(root).graph
    browser = chromium("1600,900")
    try:
        browser.get((out / "index.html").as_uri())
        nodes = browser.find_elements(By.CSS_SELECTOR, "g.node")
        assert sorted(n.get_attribute("data-asset") for n in nodes) == sorted(graph.assets)
        edges = {
            (e.get_attribute("data-from"), e.get_attribute("data-to"))
            for e in browser.find_elements(By.CSS_SELECTOR, "path.edge")
        }
        assert edges == {(up, name) for name in graph.order for up in graph.upstream[name]}
        browser.find_element(By.CSS_SELECTOR, 'g.node[data-asset="orders"]').click()
        WebDriverWait(browser, 10).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#details h2").text == "orders"
        )
        details = browser.find_element(By.ID, "details").text
        assert "One row per order" in details and "Schema" in details
        assert "amount_is_sum_of_methods" in details and "Recent materializations" in details
        selected = browser.find_elements(By.CSS_SELECTOR, "g.node.selected")
        assert [s.get_attribute("data-asset") for s in selected] == ["orders"]
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "docs-site.png"))
    finally:
        browser.quit()
