"""The case list sorts by any column (API ``sort=``, the page's column headers), chooses its page size,
jumps to a page, and says the truth past the last page."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from stopnet.reporting.service import SORT_KEYS
from tests.conftest import World, case_payload

API = "/api/v1/operations/TEST-OP/cases"
PAGE = "/operations/TEST-OP/cases"
HTML = {"Accept": "text/html"}


@pytest.fixture
def cases(client: TestClient, world: World) -> list[dict]:
    """Seven FR cases that differ in every sortable column."""
    out = []
    for i, (day, pieces, channel, origin) in enumerate(
        [(14, 5, "POSTAL", "CN"), (12, 900, "EXPRESS", "IN"), (16, 40, "AIR_CARGO", "TR"), (13, 7, "POSTAL", "AE"),
         (15, 3000, "EXPRESS", "CN"), (17, 1, "AIR_CARGO", "HK"), (12, 60, "POSTAL", "VN")]
    ):  # fmt: skip
        body = case_payload(
            f"FR-{'GBDACFE'[i]}{i}", detected_on=f"2025-05-{day}", channel=channel, origin_country=origin
        )
        body["seizures"][0]["pieces"] = pieces  # type: ignore[index]
        body["seizures"][0]["weight_kg"] = f"{pieces / 10:.3f}"  # type: ignore[index]
        r = client.post(API, json={**body, "submit": i % 2 == 0}, headers=world["fr_officer"].headers)
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


def _value(case: dict, key: str):  # the value the list is sorted on, read from what the API returns
    return {
        "reference": case["reference"],
        "detected_on": case["detected_on"],
        "reporting_org": case["reporting_org"],
        "channel": case["channel"],
        "route": case["origin_country"],
        "pieces": case["total_pieces"],
        "weight": float(case["total_weight_kg"]),
        "status": case["status"],
    }[key]


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
@pytest.mark.parametrize("descending", [False, True])
def test_the_api_sorts_by_every_key(
    client: TestClient, world: World, cases: list[dict], key: str, descending: bool
):
    sort = f"-{key}" if descending else key
    r = client.get(API, params={"sort": sort}, headers=world["fr_officer"].headers)
    assert r.status_code == 200, r.text
    body = r.json()
    values = [_value(c, key) for c in body["items"]]
    assert len(values) == len(cases) and body["sort"] == sort
    assert values == sorted(values, reverse=descending), (sort, values)


def test_an_unknown_sort_key_is_refused_with_the_known_ones(
    client: TestClient, world: World, cases: list[dict]
):
    r = client.get(API, params={"sort": "consignee_name"}, headers=world["fr_officer"].headers)
    assert r.status_code == 422
    error = r.json()["errors"][0]
    assert error["field"] == "sort" and "reference" in error["message"] and "pieces" in error["message"]
    page = client.get(PAGE, params={"sort": "nope"}, headers={**world["fr_officer"].headers, **HTML})
    assert page.status_code == 422 and "cannot sort by" in page.text


def test_pages_and_the_truth_past_the_last_one(client: TestClient, world: World, cases: list[dict]):
    h = world["fr_officer"].headers
    r = client.get(API, params={"page_size": 3, "page": 3}, headers=h).json()
    assert (r["total"], r["pages"], len(r["items"])) == (7, 3, 1)
    past = client.get(API, params={"page_size": 3, "page": 9}, headers=h).json()
    assert (past["items"], past["pages"], past["total"]) == ([], 3, 7)
    page = client.get(PAGE, params={"page_size": 3, "page": 9}, headers={**h, **HTML})
    assert page.status_code == 200
    notice = re.sub(r"\s+", " ", page.text.split('id="past-last-page"')[1].split("</div>")[0])
    assert "There is no page 9: the 7 cases fit on 3 pages." in notice and "page=3" in notice


def test_the_page_sorts_by_its_headers_chooses_its_size_and_jumps(
    client: TestClient, world: World, cases: list[dict]
):
    h = {**world["fr_officer"].headers, **HTML}
    page = client.get(PAGE, params={"page_size": 20}, headers=h).text
    # newest first by default; the date header offers the other direction, the others their natural one
    assert (
        'aria-sort="descending"><a class="sort" data-sort="detected_on" href="/operations/TEST-OP/cases?page_size=20&amp;sort=detected_on"'
        in page
    )
    assert 'data-sort="pieces" href="/operations/TEST-OP/cases?page_size=20&amp;sort=-pieces"' in page
    assert 'data-sort="reference" href="/operations/TEST-OP/cases?page_size=20&amp;sort=reference"' in page
    by_pieces = client.get(PAGE, params={"sort": "-pieces"}, headers=h).text
    refs = re.findall(r'<a href="/cases/\d+">([^<]+)</a>', by_pieces)
    expected = [c["reference"] for c in sorted(cases, key=lambda c: -c["total_pieces"])]
    assert refs == expected
    assert 'aria-sort="descending"><a class="sort" data-sort="pieces"' in by_pieces
    # page size: the form offers sizes, the list keeps the chosen one
    small = client.get(PAGE, params={"page_size": 20, "sort": "reference"}, headers=h).text
    assert '<option value="20" selected>20</option>' in small
    assert '<input type="hidden" name="sort" value="reference">' in small  # a new filter keeps the order
    three = client.get(PAGE, params={"page_size": 3, "sort": "reference"}, headers=h).text
    assert 'id="jump-to-page"' in three and 'max="3"' in three
    assert '<input type="hidden" name="sort" value="reference">' in three.split('id="jump-to-page"')[1]
    twin = client.get(
        PAGE,
        params={"page_size": 3, "sort": "reference", "format": "json"},
        headers=world["fr_officer"].headers,
    ).json()
    assert [c["reference"] for c in twin["items"]] == sorted(c["reference"] for c in cases)[:3]
