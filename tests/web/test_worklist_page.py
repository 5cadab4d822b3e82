"""The worklist page in a real browser (Debian's Chromium driven by Playwright), served by the
local site with its sign-in stand-in and the worklist API over demo-shaped data.

One browser for the module; a fresh browser context (cookies, storage) per test.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from lambdas.worklist_api import app as worklist_api
from local_platform.worklist_site import WorklistSite
from tests.lambdas.worklist_fixtures import DAY, EMPTY_DAY, demo_store

pytestmark = pytest.mark.browser

TODAY = dt.date(2026, 12, 3)


@pytest.fixture(scope="module")
def site() -> Iterator[WorklistSite]:
    real_today = worklist_api.today
    worklist_api.today = lambda: TODAY
    with WorklistSite(demo_store()) as running:
        yield running
    worklist_api.today = real_today


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which(os.environ.get("CHROMIUM", "chromium"))
    if executable is None:
        pytest.fail("no chromium on PATH: run `make setup` (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests may run as root in a container, where Chromium's sandbox
        # cannot start; the pages it loads are this repository's own.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, site: WorklistSite) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.csp_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def sign_in(page: Page, site: WorklistSite, user: str = "care.manager") -> None:
    page.goto(f"{site.url}/")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=re.compile(f"Sign in as {re.escape(user)}")).click()
    page.wait_for_url(f"{site.url}/")


def ranked_rows(page: Page) -> Any:
    return page.locator("#entries tbody tr:not(.budget-line)")


def test_sign_in_loads_the_latest_day_ranked_with_unscored_listed(page, site) -> None:
    sign_in(page, site)
    expect(page.get_by_role("status")).to_contain_text(f"Worklist of {DAY} loaded")
    expect(ranked_rows(page)).to_have_count(20)
    ranks = [int(t.split()[0]) for t in page.locator("#entries tbody td.rank").all_inner_texts()]
    assert ranks == list(range(1, 21))
    expect(page.locator("#unscored tbody tr")).to_have_count(2)
    expect(page.locator("#unscored")).to_contain_text("invalid record")
    models = page.locator("#models")
    expect(models).to_contain_text("the model changed during this day")
    expect(models.get_by_role("link", name="model card of version 8")).to_have_attribute(
        "href", "https://studio.example.org/models/readmission/8"
    )
    expect(page.locator("#deid-note")).to_contain_text("de-identified keys")
    assert page.csp_errors == []


def test_budget_line_follows_the_last_patient_within_capacity(page, site) -> None:
    sign_in(page, site)
    rows = page.locator("#entries tbody tr")
    expect(rows).to_have_count(21)
    line = page.locator("#entries tbody tr.budget-line")
    expect(line).to_have_count(1)
    expect(line).to_contain_text("capacity ends here: 4 of 20")
    index = rows.evaluate_all("rows => rows.findIndex(r => r.classList.contains('budget-line'))")
    assert index == 4  # after ranks 1..4 (ceil(0.2 * 20))
    expect(page.locator("#entries tbody tr.within")).to_have_count(4)


def test_sort_by_column_headers(page, site) -> None:
    sign_in(page, site)
    expect(ranked_rows(page)).to_have_count(20)
    page.get_by_role("button", name="Unit", exact=True).click()
    expect(page.locator("th[data-sort=unit]")).to_have_attribute("aria-sort", "ascending")
    units = page.locator("#entries tbody tr td:nth-child(3)").all_inner_texts()
    assert units == sorted(units)
    expect(page.locator("#entries tbody tr.budget-line")).to_have_count(0)
    page.get_by_role("button", name="Unit", exact=True).click()
    expect(page.locator("th[data-sort=unit]")).to_have_attribute("aria-sort", "descending")
    page.get_by_role("button", name="Probability").click()
    expect(page.locator("th[data-sort=probability]")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#entries tbody tr.budget-line")).to_have_count(1)


def test_filter_by_unit_and_band_keeps_day_ranks(page, site) -> None:
    sign_in(page, site)
    expect(ranked_rows(page)).to_have_count(20)
    page.get_by_label("Unit").select_option("surgery")
    expect(page.get_by_role("status")).to_contain_text("loaded")
    units = page.locator("#entries tbody tr:not(.budget-line) td:nth-child(3)")
    expect(units).not_to_have_count(20)
    assert set(units.all_inner_texts()) == {"surgery"}
    page.get_by_label("Risk band").select_option("moderate")
    expect(page.locator("#entries tbody .band-high")).to_have_count(0)
    bands = page.locator("#entries tbody tr:not(.budget-line) td:nth-child(4)").all_inner_texts()
    assert bands
    assert set(bands) == {"Moderate"}
    ranks = page.locator("#entries tbody td.rank").all_inner_texts()
    assert ranks == sorted(ranks, key=lambda r: int(r.split()[0]))
    assert "1" not in [r.split()[0] for r in ranks]  # the day's rank, not a renumbering


def test_detail_opens_with_enter_closes_with_escape_and_focus_returns(page, site) -> None:
    sign_in(page, site)
    first = page.locator("#entries tbody .open-detail").first
    first.focus()
    page.keyboard.press("ArrowDown")
    second = page.locator("#entries tbody .open-detail").nth(1)
    expect(second).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Patient detail")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Patient key")
    expect(dialog).to_contain_text("inpatient stays in the past year: raises the risk")
    expect(dialog).to_contain_text("Rank2 (within the team's capacity)")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(second).to_be_focused()


def test_user_without_the_group_sees_the_403_message(page, site) -> None:
    sign_in(page, site, user="no.access")
    expect(page.get_by_role("alert")).to_contain_text("not in the care team group")
    expect(page.locator("#worklist")).to_be_hidden()


def test_tampered_token_is_refused(page, site) -> None:
    sign_in(page, site)
    expect(ranked_rows(page)).to_have_count(20)
    page.evaluate(
        """() => {
          const [h, p, s] = sessionStorage.getItem('worklist.id_token').split('.');
          const claims = JSON.parse(atob(p.replace(/-/g, '+').replace(/_/g, '/')));
          claims['cognito:groups'] = ['care-team', 'admins'];
          const forged = btoa(JSON.stringify(claims)).replace(/=+$/, '')
            .replace(/\\+/g, '-').replace(/\\//g, '_');
          sessionStorage.setItem('worklist.id_token', [h, forged, s].join('.'));
        }"""
    )
    page.reload()
    expect(page.get_by_role("alert")).to_contain_text("not valid or has expired")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#worklist")).to_be_hidden()


def test_empty_day_says_so(page, site) -> None:
    sign_in(page, site)
    expect(page.get_by_role("status")).to_contain_text(f"Worklist of {DAY} loaded")
    page.goto(f"{site.url}/#day={EMPTY_DAY}")
    expect(page.get_by_role("status")).to_contain_text(f"Worklist of {EMPTY_DAY} loaded")
    expect(page.get_by_text("No discharges were scored on this day.")).to_be_visible()
    expect(page.locator("#entries")).to_be_hidden()


def test_day_never_scored_says_so(page, site) -> None:
    sign_in(page, site)
    expect(page.get_by_role("status")).to_contain_text(f"Worklist of {DAY} loaded")
    page.goto(f"{site.url}/#day=2026-11-20")
    expect(page.get_by_role("alert")).to_contain_text("it has not been scored")


def test_security_headers_and_no_inline_code(page, site) -> None:
    response = page.goto(f"{site.url}/")
    assert response is not None
    headers = response.headers
    csp = headers["content-security-policy"]
    assert "unsafe-inline" not in csp
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "max-age=" in headers["strict-transport-security"]
