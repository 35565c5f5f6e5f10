"""Working-day arithmetic of answer deadlines (pure functions, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from stopnet.rightsholders.deadlines import (
    add_working_days,
    end_of_day,
    is_overdue,
    is_working_day,
    working_days_between,
)

FRI = dt.date(2025, 5, 16)


def test_weekends_are_skipped():
    assert FRI.weekday() == 4
    assert add_working_days(FRI, 1) == dt.date(2025, 5, 19)  # Monday
    assert add_working_days(FRI, 5) == dt.date(2025, 5, 23)  # next Friday
    assert add_working_days(FRI, 10) == dt.date(2025, 5, 30)
    assert add_working_days(dt.date(2025, 5, 17), 1) == dt.date(2025, 5, 19)  # from a Saturday
    assert add_working_days(dt.date(2025, 5, 18), 10) == dt.date(2025, 5, 30)  # from a Sunday
    assert add_working_days(FRI, 0) == FRI


def test_holidays_are_skipped():
    whit_monday = dt.date(2025, 6, 9)
    assert add_working_days(dt.date(2025, 6, 6), 1, holidays={whit_monday}) == dt.date(2025, 6, 10)
    assert not is_working_day(whit_monday, {whit_monday})
    assert not is_working_day(dt.date(2025, 6, 7))


def test_negative_days_refused():
    with pytest.raises(ValueError):
        add_working_days(FRI, -1)


@pytest.mark.parametrize("days", range(0, 40))
def test_working_days_between_inverts_add(days):
    for start in (FRI, dt.date(2025, 5, 17), dt.date(2025, 5, 19), dt.date(2025, 12, 24)):
        assert working_days_between(start, add_working_days(start, days)) == days


def test_overdue_after_the_end_of_the_due_day():
    due = dt.date(2025, 5, 30)
    assert end_of_day(due).tzinfo is dt.UTC
    assert not is_overdue(due, dt.datetime(2025, 5, 30, 23, 59, tzinfo=dt.UTC))
    assert is_overdue(due, dt.datetime(2025, 5, 31, 0, 0, tzinfo=dt.UTC))
    # an instant given in another zone is compared in UTC
    tz = dt.timezone(dt.timedelta(hours=2))
    assert not is_overdue(due, dt.datetime(2025, 5, 31, 1, 0, tzinfo=tz))
