"""The operation dashboard in a real headless Chromium, served by uvicorn on 127.0.0.1.

Seeds a few hundred cases, signs in, opens the dashboard: the key figures shown equal the database's,
every panel is drawn by plotly.js (the world map too, with its map data from /static), a filter applied
through the form changes every panel, no Content-Security-Policy violation, no console error, and no
request leaves 127.0.0.1. Screenshots go to test-artifacts/screenshots/.

Uses the live server and browser fixtures of tests/web/conftest.py.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from typing import Any

import pytest
from sqlalchemy import distinct, func, select

from stopnet.access import policy
from stopnet.db.models import Case, CaseStatus, Seizure, Visibility
from tests.analytics.factories import C, S, seed
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

# record every Content-Security-Policy violation (Chromium also logs them as console errors)
CSP_WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "") + " " + (e.sourceFile || "") + ":" + e.lineNumber + ":" + e.columnNumber + " " + (e.sample || ""));
});
"""


@pytest.fixture
def app(settings: Any, session_factory: Any) -> Any:
    from stopnet.analytics import service
    from stopnet.web.app import create_app

    service.clear_cache()
    application = create_app(settings)
    yield application
    application.state.engine.dispose()
    service.clear_cache()


def operation_cases(n: int = 240) -> list[C]:
    rng = random.Random(2025)
    codes = [
        "MED-WEIGHT",
        "MED-NERV",
        "MED-ANTIINF",
        "IPR-CLOTH",
        "IPR-FOOT",
        "IPR-WATCH",
        "OTH-COSM",
        "OTH-TOBAC",
    ]
    out = []
    for i in range(n):
        org = rng.choice(["FR-CUS", "FR-CUS", "DE-CUS", "KE-CUS"])
        ecom = rng.random() < 0.63
        day = 12 + min(18, int(rng.triangular(0, 19, 14)))
        late = day >= 26
        out.append(
            C(
                org=org,
                day=day,
                status=rng.choice(
                    [CaseStatus.VALIDATED, CaseStatus.VALIDATED, CaseStatus.SUBMITTED, CaseStatus.DRAFT]
                ),
                visibility=rng.choice([Visibility.PARTICIPANTS] * 6 + [Visibility.PARTNERS, Visibility.OWN]),
                channel=rng.choice(
                    ["POSTAL", "EXPRESS"] if ecom else ["AIR_CARGO", "ROAD_CARGO", "PASSENGER"]
                ),
                ecom=ecom,
                mode=rng.choice(["AIR", "AIR", "ROAD", "SEA"]),
                detection=rng.choice(["RISK_PROFILE", "XRAY", "INTELLIGENCE", "RANDOM"]),
                origin=rng.choice(["CN", "CN", "HK", "IN", "TR", "AE"]),
                seizures=[
                    S(
                        # weight-loss pens: now and then, then every other case over the last days
                        code="MED-WEIGHT" if i % (2 if late else 12) == 0 else rng.choice(codes),
                        pieces=int(rng.lognormvariate(4, 1.5)),
                        kg=f"{rng.lognormvariate(0.5, 1.2):.3f}",
                        brand=rng.choice(["", "", "Brand X", "Runfast", "Glowup", "Slimfast"]),
                    )
                    for _ in range(rng.choice([1, 1, 1, 2, 3]))
                ],
            )
        )
    return out


def expected_key_figures(db: Any, world: Any, actor: str, **where: Any) -> dict[str, int]:
    clause = policy.case_read_clause(db, world[actor].principal, world.op.id)
    w = [
        Case.operation_id == world.op.id,
        Case.status.in_([CaseStatus.SUBMITTED, CaseStatus.VALIDATED]),
        clause,
        *[getattr(Case, k) == v for k, v in where.items()],
    ]
    q = select(Seizure.id).select_from(Seizure).join(Case, Case.id == Seizure.case_id).where(*w).subquery()
    return {
        "seizures": db.scalar(select(func.count()).select_from(q)),
        "cases": db.scalar(
            select(func.count(distinct(Case.id)))
            .select_from(Seizure)
            .join(Case, Case.id == Seizure.case_id)
            .where(*w)
        ),
        "pieces": db.scalar(
            select(func.coalesce(func.sum(Seizure.pieces), 0))
            .select_from(Seizure)
            .join(Case, Case.id == Seizure.case_id)
            .where(*w)
        ),
        "reporting_administrations": db.scalar(
            select(func.count(distinct(Case.reporting_org_id))).select_from(Case).where(*w)
        ),
    }


def click_centre(page: Any, locator: Any) -> None:
    """Hover, then click the middle of a chart element, as a person does (plotly reacts to the pointer)."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def shown_figures(page: Any) -> dict[str, int]:
    values = page.eval_on_selector_all(
        "#key-figures [data-figure]", "els => els.map(e => [e.dataset.figure, e.dataset.value])"
    )
    return {k: int(v) for k, v in values if k in ("cases", "seizures", "pieces", "reporting_administrations")}


def panels_state(page: Any) -> dict[str, dict[str, Any]]:
    """Each panel's data block and what plotly drew for it."""
    return page.eval_on_selector_all(
        "section.panel",
        """secs => Object.fromEntries(secs.map(s => [s.dataset.panel, {
            data: s.querySelector('.chart').dataset.json,
            drawn: s.querySelector('.chart').dataset.drawn === 'true',
            svg: s.querySelectorAll('.chart svg.main-svg').length,
            table: s.querySelector('details table') ? s.querySelector('details table').textContent : ''
        }]))""",
    )


def wait_drawn(page: Any) -> None:
    page.wait_for_selector("#dashboard[data-drawn='true']", timeout=30_000)
    assert page.evaluate("window.__csp") == []  # no Content-Security-Policy violation on this page


def test_dashboard_in_a_browser(browser_page, live_server, world, session_factory, db, screenshot_dir):
    page, watch = browser_page
    page.add_init_script(CSP_WATCH)
    seed(session_factory, world, operation_cases())

    page.goto("/login")
    page.fill("input[name=email]", world["coordinator"].email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("header .who")

    page.goto("/operations/TEST-OP/dashboard")
    wait_drawn(page)
    page.screenshot(path=str(screenshot_dir / "dashboard-01-all.png"), full_page=True)

    # the key figures shown are the database's
    assert shown_figures(page) == expected_key_figures(db, world, "coordinator")
    cases_tile = page.inner_text("#key-figures [data-figure='cases'] .big")
    assert cases_tile == f"{expected_key_figures(db, world, 'coordinator')['cases']:,}"

    before = panels_state(page)
    assert set(before) == {
        "progression", "regions", "countries", "commodities", "therapeutic", "transport-modes",
        "channels", "detection-methods", "routes", "brands", "trends",
    }  # fmt: skip
    for name, state in before.items():
        assert state["drawn"] and state["svg"] >= 1, name
    # the world map: country shapes drawn from the vendored topojson
    assert page.locator("#chart-countries .choropleth path").count() > 0
    assert any(u.endswith("/static/vendor/plotly-topojson/world_110m.json") for u in watch.requests)
    assert page.locator("#panel-trends .trend-summary").get_attribute("data-flagged") != "0"
    # the map has a colour scale up to the most seizures of a country; the progression's axes tick round
    most = max(r["seizures"] for r in json.loads(page.get_attribute("#chart-countries", "data-json"))["rows"])
    assert page.inner_text("#panel-countries .colour-scale-max") == f"{most:,}"
    assert page.inner_text("#panel-countries .colour-scale-min") == "0"
    for axis in ("ytick", "y2tick"):
        ticks = [
            int(t.replace(",", ""))
            for t in page.locator(f"#chart-progression g.{axis} text").all_text_contents()
        ]
        assert len(ticks) >= 3 and ticks[0] == 0, (axis, ticks)
        step = ticks[1] - ticks[0]
        assert all(b - a == step for a, b in itertools.pairwise(ticks)), (axis, ticks)
        assert re.fullmatch(r"(1|2|25|5)0*", str(step)), (axis, ticks)  # 1, 2, 2.5 or 5 × 10^k

    # a filter, through the form (htmx swaps the dashboard in; the URL keeps the filter)
    page.click("details.multi[data-filter=region] > summary")
    page.check("details.multi[data-filter=region] input[value=ESA]")
    assert page.inner_text("details.multi[data-filter=region] .picked") == "East and Southern Africa"
    page.click("form#dashboard-filters button[type=submit]")
    page.wait_for_url(re.compile(r"region=ESA"))
    wait_drawn(page)
    page.screenshot(path=str(screenshot_dir / "dashboard-02-region-esa.png"), full_page=True)
    assert shown_figures(page) == expected_key_figures(db, world, "coordinator", region_code="ESA")
    after = panels_state(page)
    for name in before:
        assert after[name]["data"] != before[name]["data"], f"panel {name} did not change"
        assert after[name]["table"] != before[name]["table"], f"table of {name} did not change"
        assert after[name]["drawn"], name

    # the filtered page, loaded directly, is the same (filters live in the URL)
    page.reload()
    wait_drawn(page)
    assert page.is_checked("details.multi[data-filter=region] input[value=ESA]")
    assert page.inner_text("details.multi[data-filter=region] .picked") == "East and Southern Africa"
    assert shown_figures(page) == expected_key_figures(db, world, "coordinator", region_code="ESA")

    # clicking a bar filters the dashboard by it; the page links to the cases behind its figures
    page.goto("/operations/TEST-OP/dashboard")
    wait_drawn(page)
    bar = page.locator("#chart-regions .bars path").first
    click_centre(page, bar)
    page.wait_for_url(re.compile(r"region=[A-Z]+"))
    wait_drawn(page)
    region = re.search(r"region=([A-Z]+)", page.url).group(1)  # type: ignore[union-attr]
    assert shown_figures(page) == expected_key_figures(db, world, "coordinator", region_code=region)
    behind = page.get_attribute("#cases-behind", "href")
    assert behind == f"/operations/TEST-OP/cases?region={region}"
    page.click("#cases-behind")
    page.wait_for_url(re.compile(r"/operations/TEST-OP/cases\?region="))
    cases = expected_key_figures(db, world, "coordinator", region_code=region)["cases"]
    assert page.inner_text("#count-total") == f"{cases:,}"

    # clicking a route of the flow chart narrows the dashboard to it, and its cases follow
    page.goto("/operations/TEST-OP/dashboard")
    wait_drawn(page)
    link = page.locator("#chart-routes .sankey-link").first
    click_centre(page, link)
    page.wait_for_url(re.compile(r"origin=[A-Z]{2}"))
    wait_drawn(page)
    origin = re.search(r"origin=([A-Z]{2})", page.url).group(1)  # type: ignore[union-attr]
    destination = re.search(r"destination=([A-Z]{2})", page.url).group(1)  # type: ignore[union-attr]
    on_route = {"origin_country": origin, "destination_country": destination}
    assert shown_figures(page) == expected_key_figures(db, world, "coordinator", **on_route)
    assert "From (origin)" in page.inner_text("p.asof")
    behind = page.get_attribute("#cases-behind", "href")
    assert behind == f"/operations/TEST-OP/cases?origin={origin}&destination={destination}"
    # and the routes table links each route the same way, keeping the other filters
    page.goto("/operations/TEST-OP/dashboard?is_ecommerce=true")
    wait_drawn(page)
    href = page.get_attribute("#panel-routes a.route-filter", "href")
    assert href and href.startswith("/operations/TEST-OP/dashboard?is_ecommerce=true&origin="), href

    # another viewer: a participating officer does not see the others' 'own' cases
    page.click("header button:has-text('Sign out')")
    page.wait_for_url(re.compile(r"/login"))
    page.fill("input[name=email]", world["de_officer"].email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("header .who")
    page.goto("/operations/TEST-OP/dashboard?is_ecommerce=true")
    wait_drawn(page)
    page.screenshot(path=str(screenshot_dir / "dashboard-03-de-officer-ecommerce.png"), full_page=True)
    assert shown_figures(page) == expected_key_figures(db, world, "de_officer", is_ecommerce=True)

    assert page.evaluate("window.__csp") == []
    assert watch.unexpected_console_errors() == [], watch.console_errors
    assert watch.page_errors == [], watch.page_errors
    assert watch.failed_resources == []
    assert watch.foreign_requests(live_server.url) == []
    assert all(u.startswith("http://127.0.0.1:") for u in watch.requests)
