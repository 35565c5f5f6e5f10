"""Working-day arithmetic for the answer deadlines of verification requests.

A working day is Monday to Friday, minus the optional ``holidays``. Deadlines are whole days: a
request sent on day *d* with *n* working days to answer is due at the end of the *n*-th working day
after *d* (the day it is sent never counts, whatever the hour). Time is never read here: callers pass
the instant they mean (``now``), so tests and replays control it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

DEFAULT_RESPONSE_WORKING_DAYS = 10
WEEKEND = (5, 6)  # Saturday, Sunday (date.weekday())


def is_working_day(day: dt.date, holidays: Collection[dt.date] = ()) -> bool:
    return day.weekday() not in WEEKEND and day not in holidays


def add_working_days(start: dt.date, days: int, holidays: Collection[dt.date] = ()) -> dt.date:
    """The ``days``-th working day after ``start`` (``start`` itself never counts).

    >>> add_working_days(dt.date(2025, 5, 16), 1)  # a Friday: the next working day is Monday
    datetime.date(2025, 5, 19)
    >>> add_working_days(dt.date(2025, 5, 16), 10)
    datetime.date(2025, 5, 30)
    """
    if days < 0:
        raise ValueError("days must be zero or more")
    day = start
    left = days
    while left:
        day += dt.timedelta(days=1)
        if is_working_day(day, holidays):
            left -= 1
    return day


def working_days_between(start: dt.date, end: dt.date, holidays: Collection[dt.date] = ()) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when ``end <= start``)."""
    if end <= start:
        return 0
    full_weeks, rest = divmod((end - start).days, 7)
    count = full_weeks * 5
    day = start + dt.timedelta(days=full_weeks * 7)
    for _ in range(rest):
        day += dt.timedelta(days=1)
        if day.weekday() not in WEEKEND:
            count += 1
    if holidays:
        count -= sum(1 for h in holidays if start < h <= end and h.weekday() not in WEEKEND)
    return count


def end_of_day(day: dt.date) -> dt.datetime:
    """The last instant of ``day`` in UTC: a request due on ``day`` is overdue after it."""
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)


def is_overdue(due_on: dt.date, now: dt.datetime) -> bool:
    return now.astimezone(dt.UTC) > end_of_day(due_on)
