"""The dashboard over HTTP: JSON twins, CSV downloads, filters, access, and the page itself."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser

import pytest

from stopnet.analytics.schemas import PANELS, panel_attr
from stopnet.db.models import CaseStatus, Visibility
from stopnet.web.assets import static_url
from tests.analytics.factories import C, S, seed

API = "/api/v1/operations/TEST-OP/dashboard"
PAGE = "/operations/TEST-OP/dashboard"
HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def data(world, session_factory):
    seed(
        session_factory,
        world,
        [
            C(org="FR-CUS", seizures=[S(code="MED-WEIGHT", pieces=120, kg="3.25", brand="Brand X"), S()]),
            C(
                org="DE-CUS",
                day=20,
                channel="EXPRESS",
                seizures=[S(code="IPR-FOOT", brand='=HYPERLINK("http://x")')],
            ),
            C(
                org="KE-CUS",
                day=25,
                ecom=False,
                channel="AIR_CARGO",
                origin="AE",
                seizures=[S(code="OTH-COSM")],
            ),
            C(org="FR-CUS", visibility=Visibility.OWN, seizures=[S(code="IPR-WATCH", brand="@own-brand")]),
            C(org="DE-CUS", status=CaseStatus.DRAFT, seizures=[S(code="IPR-BAGS", pieces=10_000)]),
        ],
    )
    return world


def test_whole_dashboard_json(client, data):
    r = client.get(API, headers=data["de_officer"].headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["operation"] == "TEST-OP"
    assert body["key_figures"]["cases"] == 3  # not FR's own case, not DE's draft
    assert body["key_figures"]["seizures"] == 4
    assert r.headers["x-data-fresh"] == "true"
    assert r.headers["x-data-as-of"].startswith("20")
    assert r.headers["cache-control"] == "no-store"
    for name in PANELS:
        assert panel_attr(name) in body


def test_each_panel_has_its_json_twin(client, data):
    h = data["fr_officer"].headers
    whole = client.get(API, headers=h).json()
    for name in PANELS:
        r = client.get(f"{API}/{name}", headers=h)
        assert r.status_code == 200, (name, r.text)
        assert r.json() == whole[panel_attr(name)], name
        page_twin = client.get(f"{PAGE}/{name}?format=json", headers=h)
        assert page_twin.json() == whole[panel_attr(name)], name
    page = client.get(f"{PAGE}?format=json", headers=h).json()
    page.pop("as_of"), whole.pop("as_of")
    assert page == whole


def test_filters_apply_and_are_checked(client, data):
    h = data["coordinator"].headers
    all_ = client.get(f"{API}/key-figures", headers=h).json()
    eur = client.get(f"{API}/key-figures?region=EUR&date_from=&country=", headers=h).json()
    assert (all_["cases"], eur["cases"]) == (3, 2)  # FR's own case is not the coordinator's to see
    ke = client.get(f"{API}/regions?country=ke", headers=h).json()
    assert [r["code"] for r in ke["rows"] if r["seizures"]] == ["ESA"]
    for query, field in (
        ("region=ZZ", "region"),
        ("country=XX", "country"),
        ("commodity_code=NOPE", "commodity_code"),
        ("commodity_group=drugs", "commodity_group"),
        ("channel=PIGEON", "channel"),
        ("is_ecommerce=perhaps", "is_ecommerce"),
        ("date_from=yesterday", "date_from"),
        ("date_from=2025-05-20&date_to=2025-05-13", "filters"),
        ("region=" + "E" * 50, "region"),
    ):
        r = client.get(f"{API}/channels?{query}", headers=h)
        assert r.status_code == 422, (query, r.text)
        assert r.json()["errors"][0]["field"] == field, query
    assert client.get(f"{API}/trends?recent_days=1", headers=h).status_code == 422
    assert client.get(f"{API}/trends?recent_days=3", headers=h).json()["recent_from"] == "2025-05-28"


def test_csv_download_is_guarded_against_formulas(client, data):
    r = client.get(f"{API}/brands?format=csv", headers=data["coordinator"].headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="stopnet-test-op-brands.csv"'
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["brand", "seizures", "pieces", "weight_kg"]
    brands = {row[0] for row in rows[1:]}
    assert '\'=HYPERLINK("http://x")' in brands
    assert "Brand X" in brands
    assert (
        "@own-brand" not in brands and "'@own-brand" not in brands
    )  # FR's own case: not for the coordinator
    fr = client.get(f"{API}/brands?format=csv", headers=data["fr_officer"].headers).text
    assert "'@own-brand" in fr
    for name in PANELS:
        r = client.get(f"{API}/{name}?format=csv", headers=data["coordinator"].headers)
        assert r.status_code == 200, name
        for row in csv.reader(io.StringIO(r.text)):
            assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in row), (name, row)
    kf = client.get(f"{PAGE}/key-figures?format=csv", headers=data["coordinator"].headers).text
    assert "cases,3" in kf


def test_access(client, data):
    assert client.get(API).status_code == 401
    assert client.get(f"{API}/regions").status_code == 401
    assert client.get(API, headers=data["xx_officer"].headers).status_code == 404
    assert (
        client.get("/api/v1/operations/NOPE/dashboard", headers=data["coordinator"].headers).status_code
        == 404
    )
    assert client.get(f"{PAGE}/nope", headers=data["coordinator"].headers).status_code == 404
    partner = client.get(f"{API}/key-figures", headers=data["partner"].headers).json()
    assert partner["cases"] == 0  # nothing shared with partners


def test_openapi_lists_the_dashboard(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/operations/{code}/dashboard" in paths
    for name in PANELS:
        assert f"/api/v1/operations/{{code}}/dashboard/{name}" in paths


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.styles = 0
        self.inline_style_attrs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        if tag == "style":
            self.styles += 1
        if "style" in a:
            self.inline_style_attrs += 1


def test_page_has_tiles_panels_and_no_inline_code(client, data):
    h = {**data["coordinator"].headers, **HTML}
    r = client.get(f"{PAGE}?region=EUR", headers=h)
    assert r.status_code == 200, r.text
    html = r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'data-figure="cases" data-value="2"' in html
    assert 'data-figure="seizures" data-value="3"' in html
    for name in PANELS:
        if name != "key-figures":
            assert f'id="panel-{name}"' in html, name
            assert f'href="/api/v1/operations/TEST-OP/dashboard/{name}?region=EUR&amp;format=csv"' in html, (
                name
            )
    p = _Scripts()
    p.feed(html)
    srcs = [s["src"] for s in p.scripts if s.get("src")]
    assert srcs.count(static_url("vendor/plotly-4.1.1-stopnet.min.js")) == 1  # plotly once, from /static
    assert static_url("dashboard.js") in srcs
    assert all(s.get("src") for s in p.scripts)  # no inline code
    assert p.styles == 0 and p.inline_style_attrs == 0
    assert 'data-topojson-url="/static/vendor/plotly-topojson/"' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing from elsewhere


def test_page_shows_bad_filters_and_ignores_them(client, data):
    h = {**data["coordinator"].headers, **HTML}
    r = client.get(f"{PAGE}?region=ZZ", headers=h)
    assert r.status_code == 200
    assert "unknown WCO region code" in r.text
    assert 'data-figure="cases" data-value="3"' in r.text


def test_panel_data_cannot_break_out_of_its_attribute(client, world, session_factory):
    seed(session_factory, world, [C(seizures=[S(brand="x'><img src=x onerror=alert(1)></script>")])])
    html = client.get(PAGE, headers={**world["coordinator"].headers, **HTML}).text
    assert "<img src=x" not in html and "'><img" not in html
    assert "x\\u0027\\u003e\\u003cimg" in html  # inside data-json='...': quotes and brackets escaped


def test_panel_fragment_for_htmx(client, data):
    r = client.get(f"{PAGE}/channels?channel=EXPRESS", headers={**data["coordinator"].headers, **HTML})
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<section class="panel" id="panel-channels"')
    assert "<html" not in r.text


def test_vendored_assets_are_served(client):
    for path in (
        "/static/vendor/plotly-4.1.1-stopnet.min.js",
        "/static/vendor/plotly-4.1.1.css",
        "/static/vendor/plotly-topojson/world_110m.json",
        "/static/dashboard.js",
        "/static/dashboard.css",
    ):
        r = client.get(path)
        assert r.status_code == 200, path
    js = client.get("/static/vendor/plotly-4.1.1-stopnet.min.js").text
    assert "new Function" not in js and "eval(" not in js  # CSP without 'unsafe-eval'
