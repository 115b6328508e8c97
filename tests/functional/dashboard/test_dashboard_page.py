"""`rfmlake dashboard` on a small lake (tests/analytics_lakes.py), rendered in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import browser
from analytics_lakes import build_analytics_lake
from rfmlake.cli.main import main
from rfmlake.dashboard import write_dashboard
from rfmlake.lake import Lake

CHARTS = ("segment_sizes", "revenue_share", "rfm_heatmap", "segment_migration", "value_distribution",
          "value_by_segment")


def _figures(dom: str) -> dict[str, str]:
    found = re.findall(r'<figure class="chart[^"]*" data-chart="([^"]+)">(.*?)</figure>', dom, re.DOTALL)
    return dict(found)


def _marks(figure: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'(data-[\w-]+)="([^"]*)"', tag)) for tag in re.findall(r'<rect class="mark"[^>]*>', figure)]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard")
    lake = build_analytics_lake(root / "lake")
    out = root / "dashboard.html"
    assert main(["dashboard", "--lake", str(lake.root), "--out", str(out)]) == 0
    return out


def test_renders_every_chart_with_data(page: Path) -> None:
    dom = browser.dump_dom(page)
    figures = _figures(dom)
    assert tuple(figures) == CHARTS
    for name, figure in figures.items():
        assert _marks(figure), f"chart {name} has no data marks"
        assert 'class="empty"' not in figure, name
    # no network: nothing is loaded from anywhere
    assert not re.search(r'(src|href)="(https?:)?//', page.read_text())
    assert "<script" not in page.read_text()


def test_charts_show_the_lake_numbers(page: Path) -> None:
    figures = _figures(browser.dump_dom(page))
    sizes = {m["data-label"]: float(m["data-value"]) for m in _marks(figures["segment_sizes"])}
    assert sizes == {"Champions": 2, "Loyal": 1, "New": 1, "Cannot Lose Them": 1, "Hibernating": 1}
    # revenue = monetary: F 500 of 980 total
    shares = {m["data-label"]: float(m["data-value"]) for m in _marks(figures["revenue_share"])}
    assert shares["Cannot Lose Them"] == pytest.approx(0.5102)
    heat = {(m["data-row"], m["data-column"]): float(m["data-value"]) for m in _marks(figures["rfm_heatmap"])}
    # (r, f): A (3,4) C (5,2) D (5,1) E (2,1) F (1,5) G (2,1)
    assert heat == {("R 3", "F 4"): 1, ("R 5", "F 2"): 1, ("R 5", "F 1"): 1, ("R 2", "F 1"): 2, ("R 1", "F 5"): 1}
    moves = {(m["data-row"], m["data-column"]): float(m["data-value"]) for m in _marks(figures["segment_migration"])}
    assert moves == {("Champions", "Champions"): 1, ("Loyal", "Champions"): 1, ("Loyal", "Loyal"): 1,
                     ("New", "(gone)"): 1, ("(new)", "New"): 1}
    assert sum(float(m["data-value"]) for m in _marks(figures["value_distribution"])) == 6


def test_no_console_messages(page: Path) -> None:
    assert browser.console_messages(page) == []


def test_screenshot(page: Path, tmp_path: Path) -> None:
    shot = browser.screenshot(page, tmp_path / "dashboard.png", size="1280,2400")
    assert shot.stat().st_size > 20_000


def test_without_value_and_migration(tmp_path: Path) -> None:
    lake = build_analytics_lake(tmp_path / "lake", with_value=False)
    (tmp_path / "lake" / "gold" / "segment_migration").rename(tmp_path / "moved")
    dom = browser.dump_dom(write_dashboard(lake, tmp_path / "d.html"))
    figures = _figures(dom)
    assert "no gold.customer_value" in figures["value_distribution"]
    assert "no gold.segment_migration" in figures["segment_migration"]
    assert _marks(figures["rfm_heatmap"])


def test_no_lake_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--lake", str(tmp_path / "nope")]) == 1
    assert "no lake at" in capsys.readouterr().err
    Lake(tmp_path / "empty").root.mkdir()
    assert main(["dashboard", "--lake", str(tmp_path / "empty")]) == 1
    assert "no gold.customer_rfm" in capsys.readouterr().err


def test_people_who_never_bought_appear_with_their_engagement_segments(tmp_path: Path) -> None:
    import pyarrow as pa

    lake = build_analytics_lake(tmp_path / "lake")
    segments = ["Buyer", "Buyer", "Abandoned a cart", "Abandoned a cart", "Abandoned a cart",
                "Browsing, never bought", "Signed up, never visited"]
    anonymous = [False, False, True, True, False, True, False]
    lake.write_arrow("gold", "customer_engagement", pa.table({
        "person_id": [f"P{i}" for i in range(len(segments))], "engagement_segment": segments,
        "is_anonymous": anonymous, "sessions_90d": pa.array([1] * len(segments), pa.int32()),
        "carts_abandoned_90d": pa.array([1 if s == "Abandoned a cart" else 0 for s in segments], pa.int32()),
    }))
    out = tmp_path / "d.html"
    assert main(["dashboard", "--lake", str(lake.root), "--out", str(out)]) == 0
    dom = browser.dump_dom(out)
    figures = _figures(dom)
    assert tuple(figures) == (*CHARTS, "engagement_segments")
    people = {m["data-label"]: float(m["data-value"]) for m in _marks(figures["engagement_segments"])}
    assert people == {"Abandoned a cart": 3, "Buyer": 2, "Browsing, never bought": 1, "Signed up, never visited": 1}
    assert "3 known only by a device" in figures["engagement_segments"]
    assert re.search(r"<b>5</b><span>people who never bought</span>", dom)
