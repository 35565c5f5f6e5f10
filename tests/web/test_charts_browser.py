"""The dashboard's charts in a real headless Chromium: nothing they offer sends data off the site, they
download as PNG and SVG under the site's CSP, and user text in them is text, never markup.

Cases are reported through the API with markup in every free-text field; the dashboard and the daily
report (the HTML its PDF is made from) are opened as the coordinator. Uses the live server and browser
fixtures of tests/pages.py.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pypdf
import pytest

from tests.conftest import case_payload
from tests.web.test_browser import sign_in
from tests.web.test_dashboard_browser import CSP_WATCH, wait_drawn

pytestmark = pytest.mark.browser

MARKUP = '<a href="//e.ex">Nf</a>'
#: plotly's toolbar buttons that send a chart (or its data) to a server of Plotly's or anyone's
OFF_SITE = {"sendChartToCloud", "sendDataToCloud", "editInChartStudio"}
#: every button a chart's toolbar may offer: zoom, pan, reset, hover modes and the two downloads
ALLOWED = {
    "toImage",
    "downloadSvg",
    "zoom2d",
    "pan2d",
    "zoomIn2d",
    "zoomOut2d",
    "resetScale2d",
    "hoverClosestCartesian",
    "hoverCompareCartesian",
    "toggleSpikelines",
    "zoomInGeo",
    "zoomOutGeo",
    "resetGeo",
    "hoverClosestGeo",
    "resetViews",
    "toggleHover",
    "resetSankeyGroup",
}


@pytest.fixture
def app(settings: Any, session_factory: Any) -> Any:
    from stopnet.analytics import service
    from stopnet.web.app import create_app

    service.clear_cache()
    application = create_app(settings)
    yield application
    application.state.engine.dispose()
    service.clear_cache()


def report_marked_up_cases(client: Any, world: Any) -> None:
    """Cases (validated) whose every free-text field, seizure lines too, is ``MARKUP``-laden."""
    text = {
        k: f"{k} {MARKUP}"
        for k in ("office", "platform_name", "consignee_name", "notes")  # the free texts of a case
    }
    for i in range(6):
        seizure = {
            "commodity_code": "IPR-CLOTH" if i % 2 else "MED-WEIGHT",
            "description": f"description {MARKUP}",
            "brand": MARKUP if i % 2 else f"B{i} & <b>bold</b> {MARKUP}",
            "rights_holder": f"holder {MARKUP}",
            "pieces": 10 + i,
            "weight_kg": "1.5",
        }
        body = case_payload(f"FR-{i:04d}", detected_on=f"2025-05-{14 + i}", seizures=[seizure], **text)
        r = client.post("/api/v1/operations/TEST-OP/cases", json=body, headers=world["fr_officer"].headers)
        assert r.status_code == 201, r.text
        r = client.post(
            f"/api/v1/cases/{r.json()['id']}/validate",
            json={"expected_version": r.json()["version"]},
            headers=world["fr_ncp"].headers,
        )
        assert r.status_code == 200, r.text


def test_no_chart_offers_to_send_its_data_off_the_site(
    browser_page, live_server, world, client, tmp_path, screenshot_dir
):
    page, watch = browser_page
    page.add_init_script(CSP_WATCH)
    report_marked_up_cases(client, world)
    sign_in(page, world["coordinator"].email)
    page.goto("/operations/TEST-OP/dashboard")
    wait_drawn(page)

    charts = page.eval_on_selector_all(".chart[data-drawn='true']", "cs => cs.map(c => c.id)")
    assert len(charts) == 11
    titles: set[str] = set()
    for chart in charts:
        buttons = page.eval_on_selector_all(
            f"#{chart} .modebar-btn", "bs => bs.map(b => [b.getAttribute('data-title'), b.dataset.attr])"
        )
        page.hover(f"#{chart}")
        assert page.locator(f"#{chart} .modebar").is_visible(), chart
        names = page.evaluate(
            "id => document.getElementById(id)._fullLayout._modeBar.buttons.flat().map("
            "b => typeof b === 'string' ? b : b.name)",
            chart,
        )
        assert not set(names) & OFF_SITE, (chart, names)
        assert set(names) <= ALLOWED, (chart, sorted(set(names) - ALLOWED))
        assert {"toImage", "downloadSvg"} <= set(names), chart
        titles |= {t for t, _ in buttons}
        assert page.locator(f"#{chart} .js-plot-link-container").count() == 0  # no "Edit chart" link
    assert not {t for t in titles if any(w in t.lower() for w in ("share", "cloud", "studio", "edit"))}
    # plotly's own defaults of this page: nothing may switch the cloud buttons back on
    context = page.evaluate(
        "() => { const c = document.getElementById('chart-brands')._context; "
        "return [c.showSendToCloud, c.showEditInChartStudio, c.plotlyServerURL, c.showLink]; }"
    )
    assert context == [False, False, "", False]

    page.hover("#chart-brands")
    page.locator("#panel-brands").screenshot(path=str(screenshot_dir / "charts-toolbar.png"))
    # the downloads: PNG through plotly's camera button, SVG through ours, both made in the browser
    for chart in ("chart-brands", "chart-countries", "chart-routes", "chart-progression"):
        page.hover(f"#{chart}")
        for title, magic, suffix in (
            ("Download plot as a PNG", b"\x89PNG\r\n\x1a\n", ".png"),
            ("Download plot as an SVG", b"<svg", ".svg"),
        ):
            with page.expect_download() as info:
                page.click(f"#{chart} .modebar-btn[data-title='{title}']")
            download = info.value
            assert download.failure() is None, (chart, title, download.failure())
            target = Path(tmp_path) / f"{chart}{suffix}"
            download.save_as(target)
            data = target.read_bytes()
            assert download.suggested_filename == f"stopnet-{chart.removeprefix('chart-')}{suffix}"
            assert data.startswith(magic), (chart, title, data[:40])
            if suffix == ".svg":
                assert b"</svg>" in data and b"<a " not in data and b"<a>" not in data
            else:
                assert len(data) > 2000  # a drawn chart, not an empty canvas
    assert page.evaluate("window.__csp") == []
    assert watch.unexpected_console_errors() == [], watch.console_errors
    assert watch.page_errors == [] and watch.failed_resources == []
    assert watch.foreign_requests(live_server.url) == []


def test_user_text_in_charts_and_tooltips_is_text(browser_page, live_server, world, client, screenshot_dir):
    page, watch = browser_page
    page.add_init_script(CSP_WATCH)
    report_marked_up_cases(client, world)
    sign_in(page, world["coordinator"].email)
    page.goto("/operations/TEST-OP/dashboard")
    wait_drawn(page)

    assert page.locator(".chart a").count() == 0
    labels = page.eval_on_selector_all("#chart-brands .ytick text", "ts => ts.map(t => t.textContent)")
    assert MARKUP in labels, labels  # shown as typed, not as a link
    assert 'B0 & <b>bold</b> <a href="//e…' in labels, labels  # shortened on the axis, as text

    # every tooltip of every chart: hover each point and read the label plotly draws
    hovered = page.evaluate(
        """() => {
        const texts = [];
        for (const gd of document.querySelectorAll('.chart[data-drawn="true"]')) {
          (gd.data || []).forEach((trace, curve) => {
            const n = (trace.x || trace.locations || trace.link && trace.link.value || []).length;
            for (let i = 0; i < n; i++) {
              window.Plotly.Fx.hover(gd, [{curveNumber: curve, pointNumber: i}]);
              if (gd.querySelector('.hoverlayer a')) { texts.push('LINK in ' + gd.id); }
              const t = gd.querySelector('.hoverlayer');
              if (t) { texts.push(t.textContent); }
            }
          });
          window.Plotly.Fx.unhover(gd);
        }
        return texts;
    }"""
    )
    assert not [t for t in hovered if t.startswith("LINK in ")], hovered
    assert any(MARKUP in t for t in hovered), hovered  # the brand's tooltip shows the markup as text
    assert any(f"B0 & <b>bold</b> {MARKUP}Seizures" in t for t in hovered), hovered  # whole, as typed
    page.screenshot(path=str(screenshot_dir / "charts-markup-as-text.png"), full_page=True)

    # the daily report and its PDF: charts drawn by the server, with no link in them
    page.goto("/operations/TEST-OP/reports/daily?date=2025-05-19")
    assert page.locator("main svg").count() >= 2
    assert page.locator("main svg a, main a[href*='e.ex']").count() == 0
    pdf = page.request.get("/operations/TEST-OP/reports/daily.pdf?date=2025-05-19")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    links = [
        annot.get_object().get("/A", {}).get("/URI")
        for pg in pypdf.PdfReader(io.BytesIO(pdf.body())).pages
        for annot in pg.get("/Annots") or []
    ]
    assert not [u for u in links if u and "e.ex" in str(u)], links
    assert page.evaluate("window.__csp") == []
    assert watch.unexpected_console_errors() == [], watch.console_errors
    assert watch.page_errors == [] and watch.failed_resources == []
    assert watch.foreign_requests(live_server.url) == []
