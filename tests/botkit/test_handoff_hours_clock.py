"""Office hours against the calendar's odd days: hours that fall wholly in a skipped
stretch of wall-clock time are never announced as an opening, and a machine without a
time-zone database is told so instead of being told the zone name is wrong."""

from __future__ import annotations

import sys
import tomllib
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from botkit.handoff.hours import OfficeHours
from botkit.handoff.texts import opening_text

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


# 29 March 2026 in Amsterdam jumps from 02:00 to 03:00.
@pytest.mark.parametrize("sunday", ["02:00-02:45", "02:30-03:00", "02:00-02:01, 02:15-02:59"])
def test_hours_wholly_in_the_skipped_hour_are_no_opening(sunday: str) -> None:
    hours = OfficeHours(timezone="Europe/Amsterdam", sun=sunday, mon="09:00-17:00")
    now = datetime(2026, 3, 29, 1, 0, tzinfo=AMSTERDAM)
    opening = hours.next_opening(now)
    assert opening == datetime(2026, 3, 30, 9, 0, tzinfo=AMSTERDAM)
    assert hours.is_open(opening)
    assert opening_text(opening, "en", hours, now) == "Monday 09:00 (Europe/Amsterdam)"


def test_hours_reaching_past_the_skipped_hour_open_when_it_ends() -> None:
    hours = OfficeHours(timezone="Europe/Amsterdam", sun="02:00-02:45, 03:30-05:00")
    opening = hours.next_opening(datetime(2026, 3, 29, 1, 0, tzinfo=AMSTERDAM))
    assert opening == datetime(2026, 3, 29, 3, 30, tzinfo=AMSTERDAM)
    assert opening is not None and hours.is_open(opening)


def test_hours_on_the_day_samoa_skipped_are_no_opening() -> None:
    # Samoa went from 29 December 2011 straight to 31 December: Friday the 30th never was.
    apia = ZoneInfo("Pacific/Apia")
    hours = OfficeHours(timezone="Pacific/Apia", fri="09:00-17:00", sat="09:00-17:00")
    opening = hours.next_opening(datetime(2011, 12, 29, 18, 0, tzinfo=apia))
    assert opening == datetime(2011, 12, 31, 9, 0, tzinfo=apia)
    assert opening is not None and opening.astimezone(UTC) == datetime(
        2011, 12, 30, 19, 0, tzinfo=UTC
    )


@pytest.fixture
def no_time_zone_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What Alpine, distroless images and Windows have without the tzdata package: no
    system zone files, and no tzdata to fall back to."""
    # Its import fails, its submodules' too: an earlier test may have imported some
    # (available_timezones() does), and a cached submodule would still be found.
    for name in [m for m in sys.modules if m == "tzdata" or m.startswith("tzdata.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tzdata", None)
    zoneinfo.reset_tzpath(to=[str(tmp_path)])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        yield
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


@pytest.mark.usefixtures("no_time_zone_database")
def test_without_a_time_zone_database_the_error_says_so() -> None:
    with pytest.raises(ValidationError) as caught:
        OfficeHours(timezone="Europe/Amsterdam", mon="09:00-17:00")
    assert "no time-zone database found (install the tzdata package)" in str(caught.value)
    assert "not a known time zone" not in str(caught.value)


def test_with_a_database_an_unknown_zone_is_named() -> None:
    with pytest.raises(ValidationError, match="'Europe/Amsterdm' is not a known time zone"):
        OfficeHours(timezone="Europe/Amsterdm", mon="09:00-17:00")


def test_tzdata_is_a_dependency() -> None:
    # Python's zoneinfo reads the system's zone files, or the tzdata package where there
    # are none.
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "tzdata" for d in dependencies)
