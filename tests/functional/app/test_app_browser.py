"""The marketing app end to end in headless Chromium (Playwright driving Debian's chromium, as
tests/browser.py does for static pages): a real pipeline run on generated data, the app served by
uvicorn on localhost, a marketer who signs in, opens a segment, builds and saves an audience,
creates a journey with a holdout, and sees its results after the next pipeline run; an admin who
reads the audit log and a run's timings, quarantine and quality. Every page passes axe-core with no
serious or critical violation. Screenshots go to $RFMLAKE_APP_SCREENSHOTS (docs/app/ through
`make screenshots`), else a temporary folder."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser import FLAGS, chromium
from rfmlake.app.auth import LocalUsers
from rfmlake.app.local import local_app
from rfmlake.audiences import AudienceFilters, load_audiences, measure
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import Settings, load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
HAS_JOURNEYS = importlib.util.find_spec("rfmlake.journeys") is not None
PASSWORDS = {"mia": "marketer-pass-1", "ada": "admin-pass-123"}


@dataclass
class Site:
    url: str
    root: Path
    lake: Lake
    settings: Settings
    screenshots: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(site: Site) -> None:
    run_pipeline(RunContext(landing_dir=site.root / "landing", lake=site.lake, settings=site.settings))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    import uvicorn

    from rfmlake.generate import generate_landing

    root = tmp_path_factory.mktemp("app-e2e")
    generate_landing(root / "landing", order_lines=6000, seed=5, bad_rows=True)
    journeys = None
    if HAS_JOURNEYS and (REPO / "journeys").is_dir():
        journeys = root / "journeys"
        shutil.copytree(REPO / "journeys", journeys)
    settings = load_settings(overrides={"journeys.dir": str(journeys)} if journeys else None)
    lake = Lake(root / "lake")
    screenshots = Path(os.environ.get("RFMLAKE_APP_SCREENSHOTS") or root / "screenshots")
    screenshots.mkdir(parents=True, exist_ok=True)
    site = Site("", root, lake, settings, screenshots)
    run_once(site)
    users = LocalUsers(lake)
    users.add("mia", "marketer", PASSWORDS["mia"])
    users.add("ada", "admin", PASSWORDS["ada"])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(local_app(lake, settings, journeys_dir=journeys), host="127.0.0.1",
                                           port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the app did not start"
        time.sleep(0.05)
    site.url = f"http://127.0.0.1:{port}"
    yield site
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    executable = chromium()  # skips without Chromium outside CI, fails in CI (tests/browser.py)
    if not AXE.is_file():
        message = "axe-core is not installed: npm ci (package-lock.json)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(executable_path=executable, args=list(FLAGS), headless=True)
        yield chrome
        chrome.close()


def new_page(browser, site: Site):  # noqa: ANN001, ANN201
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=site.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def sign_in(page, name: str, start: str = "/segments") -> None:  # noqa: ANN001
    page.goto(start)
    assert page.url.endswith(f"/login?next={start}")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**{start}")
    assert page.get_by_test_id("user").inner_text() == name


def check_accessibility(page, label: str) -> None:  # noqa: ANN001
    """axe-core on the page as shown: no serious or critical violation of WCAG 2.x A/AA rules. The
    script is evaluated over the DevTools protocol, which the page's CSP does not govern."""
    page.evaluate(AXE.read_text())
    result = page.evaluate("""async () => await axe.run(document, {
        runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})""")
    serious = [{"id": v["id"], "impact": v["impact"], "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"]][:5]}
               for v in result["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{label}: {json.dumps(serious, indent=1)}"
    assert result["passes"], f"{label}: axe ran no check"
    assert page.errors == [], f"{label}: console errors {page.errors}"


def shot(page, site: Site, name: str) -> None:  # noqa: ANN001
    page.screenshot(path=str(site.screenshots / f"{name}.png"), full_page=True)


def test_a_marketer_opens_a_segment_and_builds_and_saves_an_audience(site: Site, browser) -> None:  # noqa: ANN001
    page = new_page(browser, site)
    sign_in(page, "mia")
    con = connect(site.lake, zones=("gold",))
    sizes = dict(con.execute("SELECT rfm_segment, count(*) FROM gold.customer_rfm GROUP BY 1").fetchall())
    table = page.get_by_test_id("segment-table")
    for segment, customers in sizes.items():
        row = table.get_by_role("row").filter(has=page.get_by_role("link", name=segment, exact=True))
        assert row.get_by_role("cell").first.inner_text() == f"{customers:,}"
    assert page.locator('figure[data-chart="segment-sizes"] .mark').count() == len(sizes)
    check_accessibility(page, "segments")
    shot(page, site, "segments")

    segment = max(sizes, key=sizes.get)
    page.get_by_role("link", name=segment, exact=True).click()
    page.wait_for_url("**/segments/rfm_segment/**")
    assert page.get_by_role("heading", level=1).inner_text() == segment
    assert page.get_by_test_id("segment-customers").inner_text().startswith(f"{sizes[segment]:,} ")
    members = page.get_by_test_id("members").locator("tbody tr")
    assert members.count() == min(50, sizes[segment])
    check_accessibility(page, "segment")
    shot(page, site, "segment")

    customer = members.first.get_by_role("link").inner_text()
    members.first.get_by_role("link").click()
    page.wait_for_url(f"**/customers/{customer}")
    assert "raw personal data, which your role may not read" in page.get_by_test_id("hidden").inner_text()
    assert "@" not in page.locator("main").inner_text()  # no address reaches a marketer's page
    check_accessibility(page, "customer")

    page.get_by_role("link", name="Audiences").click()
    page.get_by_role("link", name="Build an audience").click()
    chosen = sorted(sizes)[:2]
    for name in chosen:
        page.get_by_role("checkbox", name=name, exact=True).check()
    page.get_by_label("At least this many web and app events").fill("1")
    expected = measure(con, AudienceFilters(segments=tuple(chosen), min_events=1))
    count = page.get_by_test_id("audience-count")
    count.wait_for()
    page.wait_for_function("n => document.querySelector('[data-testid=audience-count]').textContent === n",
                           arg=f"{expected.customers:,}")
    assert page.get_by_test_id("audience-revenue").inner_text() == f"{expected.revenue:,.0f}"
    check_accessibility(page, "audience builder")
    shot(page, site, "audience-builder")

    page.get_by_label("Audience name").fill("Browser buyers")
    page.get_by_role("button", name="Save audience").click()
    page.wait_for_url("**/audiences/browser_buyers")
    assert page.get_by_test_id("audience-now").inner_text().startswith(f"{expected.customers:,} customers")
    (saved,) = [a for a in load_audiences(site.lake) if a.audience_id == "browser_buyers"]
    assert (saved.customers, saved.filters.segments, saved.updated_by) == (expected.customers, tuple(chosen), "mia")
    check_accessibility(page, "audience")


@pytest.mark.skipif(not HAS_JOURNEYS, reason="rfmlake.journeys is not part of this build")
def test_a_marketer_creates_a_journey_with_a_holdout_and_sees_its_results(site: Site, browser) -> None:  # noqa: ANN001
    from rfmlake.audiences import audience_id, save_audience

    con = connect(site.lake, zones=("gold",))
    top = con.execute("SELECT rfm_segment FROM gold.customer_rfm GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
                      ).fetchone()[0]
    filters = AudienceFilters(segments=(top,))
    save_audience(site.lake, audience_id=audience_id(f"All {top}"), name=f"All {top}", description="",
                  filters=filters, size=measure(con, filters), actor="mia")
    page = new_page(browser, site)
    sign_in(page, "mia", "/journeys")
    page.get_by_role("link", name="Create a journey").click()
    page.get_by_label("Name").fill("Browser journey")
    page.get_by_label("Trigger").select_option(audience_id(f"All {top}"))
    page.get_by_label("Holdout").fill("20")
    page.get_by_label("Variants").fill("A=50, B=50")
    check_accessibility(page, "new journey")
    shot(page, site, "journey-new")
    page.get_by_role("button", name="Create journey").click()
    page.wait_for_url("**/journeys/browser_journey")
    assert page.get_by_test_id("journey-status").inner_text() == "paused"
    page.get_by_role("button", name="Start journey").click()
    page.wait_for_url("**/journeys/browser_journey")
    assert page.get_by_test_id("journey-status").inner_text() == "active"
    assert page.get_by_test_id("no-results").is_visible()

    def shown(column: int) -> dict[str, str]:
        rows = page.get_by_test_id("journey-results").locator("tbody tr")
        return {rows.nth(i).locator("th").inner_text(): rows.nth(i).locator("td").nth(column).inner_text()
                for i in range(rows.count())}

    def gold(sql: str) -> list[tuple]:
        con = connect(site.lake, zones=("gold",))  # a new one per read: each run commits new versions
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    run_once(site)  # the journeys stage lets the audience's customers in, held out or not
    page.reload()
    entered = shown(0)
    assert set(entered) == {"holdout", "A", "B"}
    assigned = gold("SELECT \"group\", variant, count(*) FROM gold.journey_assignments "
                    "WHERE journey_id = 'browser_journey' GROUP BY ALL")
    assert {v if g != "holdout" else "holdout": f"{n:,}" for g, v, n in assigned} == entered
    con = connect(site.lake, zones=("gold",))
    assert sum(int(v.replace(",", "")) for v in entered.values()) == measure(con, filters).customers
    con.close()

    # Orders within the goal window, a treated customer 30 points likelier to order than a held-out
    # one (rfmlake journeys simulate); the next run measures the lift.
    from rfmlake.cli.main import main

    assert main(["journeys", "simulate", "--lake", str(site.lake.root), "--landing", str(site.root / "landing"),
                 "--journey", "browser_journey", "--uplift", "0.3", "--base-rate", "0.05",
                 "--dir", str(site.settings.journeys.dir)]) == 0
    run_once(site)
    page.reload()
    conversions = dict(gold("SELECT variant, conversions FROM gold.journey_results WHERE journey_id = "
                            "'browser_journey' AND day = (SELECT max(day) FROM gold.journey_results "
                            "WHERE journey_id = 'browser_journey')"))
    assert conversions["A"] + conversions["B"] > 0
    assert shown(2) == {v: f"{n:,}" for v, n in conversions.items()}
    assert page.get_by_test_id("results-day").inner_text() == str(gold(
        "SELECT max(day) FROM gold.journey_results WHERE journey_id = 'browser_journey'")[0][0])
    assert page.locator('figure[data-chart="journey-lift"] .mark').count() == 2
    assert page.locator('figure[data-chart="journey-conversion"] .mark').count() == 3
    check_accessibility(page, "journey results")
    shot(page, site, "journey-results")


def test_an_admin_reads_the_runs_and_the_audit_log(site: Site, browser) -> None:  # noqa: ANN001
    page = new_page(browser, site)
    sign_in(page, "ada", "/runs")
    runs = page.get_by_test_id("runs").locator("tbody tr")
    assert runs.count() >= 1
    check_accessibility(page, "runs")
    runs.first.get_by_role("link").click()
    run_id = page.url.rsplit("/", 1)[1]
    summary = json.loads((site.lake.runs_dir / run_id / "summary.json").read_text())
    stages = page.get_by_test_id("stages").locator("tbody th")
    assert [stages.nth(i).inner_text() for i in range(stages.count())] == [s["name"] for s in summary["stages"]]
    quarantined = page.get_by_test_id("quarantine").locator("tbody tr")
    assert quarantined.count() == sum(len(r) for r in summary["quarantine"].values()) > 0
    assert page.get_by_test_id("quality-silver").is_visible() and page.get_by_test_id("quality-gold").is_visible()
    assert page.locator('figure[data-chart="stage-timings"] .mark').count() == len(summary["stages"])
    check_accessibility(page, "run")
    shot(page, site, "run")

    page.get_by_role("link", name="Audit log").click()
    audit = page.get_by_test_id("audit").inner_text()
    assert "audience.save" in audit and "browser_buyers" in audit and "mia" in audit
    if HAS_JOURNEYS:
        assert "journey.create" in audit and "journey.start" in audit
    check_accessibility(page, "audit")
    shot(page, site, "audit")
