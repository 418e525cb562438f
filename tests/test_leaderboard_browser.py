"""The leaderboard in a real browser: `llm4rec leaderboard serve` on 127.0.0.1 over the
fixture store's snapshot, headless Chromium loads it, waits for the rendered table and
finds every task's leader with its score, and each row's provenance badge painted in its
colour, and "verified only" hiding the rows it should. The overview screenshot is kept in
tests/artifacts/, the badges' in /tmp/llm4rec-leaderboard-badges.png.

Needs Chromium at /usr/bin/chromium (`make test` installs it) and the playwright
package (the `test` extra); without them the test is skipped, except under CI=true."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import REPO
from leaderboard_fixtures import serving

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "tests" / "artifacts"
BADGES_SHOT = Path("/tmp/llm4rec-leaderboard-badges.png")  # a stable place to look at after the run
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _require_browser():
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason, sync_playwright = "the playwright package is not installed (pip install -e '.[test]')", None
    if reason is None and not Path(CHROMIUM).is_file():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium; `make test` does it)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


def open_page(playwright, profile: Path, height: int = 1000):
    """A fresh headless Chromium (its own user-data-dir) and a page in it. Streamlit
    scrolls inside its own container, so a screenshot shows what the viewport holds."""
    browser = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": height})
    return browser, browser.new_page()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Serve the fixture store's leaderboard; the server is always stopped."""
    from leaderboard.snapshot import build_snapshot, load_snapshot
    from leaderboard.tables import all_leaderboards, leaders
    from test_leaderboard import build_fixture_store

    root = tmp_path_factory.mktemp("browser-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM4REC_CACHE", str(root / "cache"))
        uri = build_fixture_store(root)
    folder = build_snapshot(uri, root / "snapshot")
    with serving(folder, root) as url:
        yield url, leaders(all_leaderboards(load_snapshot(folder)))


def test_chromium_shows_the_leaders_and_their_scores(served, tmp_path):
    sync_playwright = _require_browser()
    from leaderboard.tables import mean_std

    url, leaders = served
    profile = tmp_path / "chromium-profile"  # a fresh user-data-dir
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "leaderboard-overview.png"
    with sync_playwright() as playwright:
        browser, page = open_page(playwright, profile)
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector('[data-testid="stDataFrame"]', timeout=90_000)  # the rendered table
            page.get_by_text("Leaders", exact=True).wait_for(timeout=30_000)
            page.wait_for_timeout(1500)  # let the canvas tables paint before the screenshot
            page.screenshot(path=str(shot), full_page=True)
            body = page.inner_text("body")
        finally:
            browser.close()
    shutil.copy(shot, tmp_path / shot.name)
    print(f"\nscreenshot: {shot}")
    assert len(leaders) == 3
    for leader in leaders.itertuples():
        assert leader.leader in body, leader.leader
        assert mean_std(leader.score, leader.score_std) in body
    assert "llm-zs@1" in body  # the zero-shot leader


# The canvas of st.dataframe has no text; glide-data-grid keeps an accessible copy of the
# cells shown in a <table role="grid"> inside it, and the pixels say what was painted.
GRID_ROWS_JS = """el => {
  const table = el.querySelector('table[role=grid]');
  const names = Array.from(table.querySelectorAll('thead th')).map(th => th.textContent);
  return Array.from(table.querySelectorAll('tbody tr')).map(tr => Object.fromEntries(
    Array.from(tr.querySelectorAll('td')).map((td, i) => [names[i], td.textContent])));
}"""
COLOR_PIXELS_JS = """(el, rgb) => {
  const canvas = el.querySelector('canvas[data-testid="data-grid-canvas"]');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const near = (i, channel) => Math.abs(data[i + channel] - rgb[channel]) <= 4;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (near(i, 0) && near(i, 1) && near(i, 2)) count++;
  }
  return count;
}"""


def table_rows(page) -> dict[str, list[dict]]:
    """Each rendered Overview table's rows, keyed by task: {column: cell text}."""
    tables = {}
    for frame in page.locator('[data-testid="stDataFrame"]').all():
        for row in frame.evaluate(GRID_ROWS_JS):
            tables.setdefault(row["task"].split(" · ")[0], []).append(row)
    return tables


def badge_pixels(page, color: str) -> int:
    """Pixels of `color` (#rrggbb) painted in all the page's tables."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return sum(frame.evaluate(COLOR_PIXELS_JS, rgb) for frame in page.locator('[data-testid="stDataFrame"]').all())


def test_chromium_shows_provenance_badges_and_verified_only(served, tmp_path):
    sync_playwright = _require_browser()
    from leaderboard.tables import PROVENANCE_BADGES
    from test_leaderboard import HOSTILE, SELF_REPORTED, VERIFIED, ZS

    url, _ = served
    shot = tmp_path / "leaderboard-badges.png"
    with sync_playwright() as playwright:
        browser, page = open_page(playwright, tmp_path / "chromium-profile", height=1800)  # every table
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector('[data-testid="stDataFrame"] table[role=grid]', state="attached", timeout=90_000)
            page.get_by_text("Provenance of each row", exact=False).wait_for(timeout=30_000)
            page.wait_for_timeout(1500)  # let the canvas tables paint
            page.screenshot(path=str(shot), full_page=True)
            before = table_rows(page)
            pixels = {name: badge_pixels(page, badge.color) for name, badge in PROVENANCE_BADGES.items()}
            legend = page.inner_text("body")
            page.get_by_text("verified only", exact=True).click()
            page.wait_for_function(f"() => !document.body.innerHTML.includes('>{SELF_REPORTED}<')", timeout=60_000)
            page.wait_for_timeout(1000)
            after = table_rows(page)
        finally:
            browser.close()
    shutil.copy(shot, BADGES_SHOT)
    print(f"\nbadges screenshot: {shot} (copied to {BADGES_SHOT})")
    shown = {row["submission"]: row["provenance"] for row in before[ZS]}
    assert shown == {"llm-zs": "unsandboxed", "pop (reference)": "unsandboxed", HOSTILE: "unsandboxed",
                     VERIFIED: "✓ verified", SELF_REPORTED: "self-reported"}
    assert all(count > 100 for count in pixels.values()), pixels  # every badge painted, in its own colour
    for badge in PROVENANCE_BADGES.values():
        assert badge.label in legend and badge.meaning in legend
    # verified only: the verified row leads its task alone; no unsandboxed or self-reported row is left.
    assert [(row["submission"], row["rank"], row["vs leader"]) for row in after[ZS]] == [(VERIFIED, "1", "leader")]
    assert {row["provenance"] for rows in after.values() for row in rows} == {"✓ verified", "sandboxed"}
