"""Dashboard filters an analyst expects: several values at once, relative periods, names not codes."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from stopnet.analytics.api import parse_filters
from stopnet.analytics.schemas import DashboardFilters
from stopnet.db.models import Visibility
from tests.analytics.factories import C, S, seed

API = "/api/v1/operations/TEST-OP/dashboard"
PAGE = "/operations/TEST-OP/dashboard"
CASES = "/api/v1/operations/TEST-OP/cases"
HTML = {"Accept": "text/html"}


@pytest.fixture
def data(world, session_factory):
    seed(
        session_factory,
        world,
        [
            C(org="FR-CUS", day=13, seizures=[S(code="MED-WEIGHT")]),
            C(org="FR-CUS", day=27, channel="EXPRESS", seizures=[S(code="IPR-FOOT"), S(code="OTH-COSM")]),
            C(org="DE-CUS", day=20, channel="EXPRESS", seizures=[S(code="IPR-FOOT")]),
            C(org="KE-CUS", day=29, channel="AIR_CARGO", ecom=False, seizures=[S(code="OTH-COSM")]),
            C(org="KE-CUS", day=30, visibility=Visibility.PARTICIPANTS, seizures=[S(code="MED-WEIGHT")]),
        ],
    )
    return world


def _cases(client, world, **params) -> int:
    r = client.get(API, params=params, headers=world["coordinator"].headers)
    assert r.status_code == 200, r.text
    return int(r.json()["key_figures"]["cases"])


def test_several_values_of_a_filter_add_up(client, data):
    eur, esa = _cases(client, data, region="EUR"), _cases(client, data, region="ESA")
    assert (eur, esa) == (3, 2)
    assert _cases(client, data, region="EUR,ESA") == eur + esa
    # repeated parameters (what a form of checkboxes sends) mean the same
    both = client.get(f"{API}?region=EUR&region=ESA", headers=data["coordinator"].headers).json()
    assert both["key_figures"]["cases"] == eur + esa
    assert _cases(client, data, channel="EXPRESS,AIR_CARGO") == 3
    assert _cases(client, data, country="FR,KE") == 4
    assert _cases(client, data, commodity_code="IPR-FOOT,OTH-COSM") == 3
    # the case list behind the dashboard takes the same filters
    listed = client.get(CASES, params={"region": "EUR,ESA"}, headers=data["coordinator"].headers).json()
    assert listed["total"] == eur + esa


def test_an_unknown_code_among_several_is_named(client, data):
    r = client.get(API, params={"region": "EUR,XX,YY"}, headers=data["coordinator"].headers)
    assert r.status_code == 422
    error = r.json()["errors"][0]
    assert error["field"] == "region" and "'XX'" in error["message"] and "'YY'" in error["message"]


def test_the_last_days_of_the_operation(client, data):
    """TEST-OP runs 12-30 May 2025 and is over: "last 7 days" are its last seven, 24-30 May."""
    week = _cases(client, data, last_days=7)
    assert week == _cases(client, data, date_from="2025-05-24", date_to="2025-05-30") == 3
    assert _cases(client, data, last_days=1) == 1
    bad = client.get(
        API, params={"last_days": 7, "date_from": "2025-05-14"}, headers=data["coordinator"].headers
    )
    assert bad.status_code == 422 and "not both" in bad.text


def test_last_days_up_to_today_while_the_operation_runs():
    f = DashboardFilters(last_days=3).for_period(
        dt.date(2025, 5, 12), dt.date(2025, 5, 30), dt.date(2025, 5, 20)
    )
    assert (f.date_from, f.date_to, f.last_days) == (dt.date(2025, 5, 18), dt.date(2025, 5, 20), None)
    early = DashboardFilters(last_days=14).for_period(
        dt.date(2025, 5, 12), dt.date(2025, 5, 30), dt.date(2025, 5, 1)
    )
    assert early.date_from == early.date_to == dt.date(2025, 5, 12)


def test_codes_are_kept_sorted_and_unique():
    filters, errors = parse_filters({"region": "esa, EUR,ESA"})
    assert errors == [] and filters.region == "ESA,EUR" and filters.codes("region") == ["ESA", "EUR"]


def test_the_page_speaks_in_names_and_offers_several_choices(client, data):
    page = client.get(
        PAGE, params={"region": "EUR,ESA", "last_days": 7}, headers={**data["coordinator"].headers, **HTML}
    )
    assert page.status_code == 200
    html = page.text
    chips = re.findall(r'<span class="chip">([^<]+)</span>', html)
    assert "Region: East and Southern Africa, Europe" in chips and "Period: last 7 days" in chips
    assert not [c for c in chips if re.search(r"\b(EUR|ESA)\b", c)], chips
    # checkboxes, checked for the chosen regions, labelled with names
    assert re.search(r'<input type="checkbox" name="region" value="EUR" checked> Europe</label>', html)
    assert '<span class="picked">2 chosen</span>' in html
    # countries are offered sorted by name
    countries = re.findall(r'<input type="checkbox" name="country" value="[A-Z]{2}" ?> ([^<]+)</label>', html)
    assert len(countries) > 100 and countries == sorted(countries, key=str.casefold)
    assert '<option value="7" selected>last 7 days</option>' in html
