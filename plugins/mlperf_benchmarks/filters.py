"""The page's filters from the query string: checked here, applied by the store in SQL."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

MAX_FILTER_LEN = 250
MAX_OFFSET = 1_000_000_000           # rows to skip: a database's integers end at 2**63 - 1
# Dates the page can do arithmetic on (`until` + 1 day, the trend window's 14 days back) and every database stores.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


class BadFilter(ValueError):
    """A filter value the page cannot use; the message is shown to the user."""


@dataclasses.dataclass(frozen=True)
class Filters:
    scenario: str | None = None
    node: str | None = None
    branch: str | None = None
    since: date | None = None
    until: date | None = None

    @property
    def since_dt(self) -> datetime | None:
        return datetime.combine(self.since, time.min, tzinfo=timezone.utc) if self.since else None

    @property
    def until_dt(self) -> datetime | None:
        """`until` is inclusive for the user (a whole day), exclusive for the store."""
        return datetime.combine(self.until + timedelta(days=1), time.min, tzinfo=timezone.utc) if self.until else None

    def query(self) -> dict[str, str]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items() if v is not None}

    def store_kwargs(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "node": self.node, "branch": self.branch,
                "since": self.since_dt, "until": self.until_dt}


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_FILTER_LEN:
        raise BadFilter(f"a filter value is longer than {MAX_FILTER_LEN} characters")
    return value


def _day(name: str, value: str | None) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"'{name}' must be a date as YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadFilter(f"'{name}' must be a date between {FIRST_DAY} and {LAST_DAY}")
    return day


def check_offset(value: int) -> int:
    """A row offset the store can bind (FastAPI has checked it is an integer >= 0)."""
    if value > MAX_OFFSET:
        raise BadFilter(f"'offset' must be at most {MAX_OFFSET:,}")
    return value


def parse_filters(scenario: str | None, node: str | None, branch: str | None, since: str | None,
                  until: str | None) -> Filters:
    filters = Filters(_text(scenario), _text(node), _text(branch), _day("since", since), _day("until", until))
    if filters.since and filters.until and filters.since > filters.until:
        raise BadFilter("'since' is after 'until'")
    return filters
