"""Office hours: whether a colleague can answer now, and when they next can.

``[plugins.handoff.hours]`` holds a weekly schedule in one time zone (daylight saving
time included: "09:00" is 09:00 on the wall clock all year) and the dates the team is
off. Outside those hours a hand-off still happens, but the customer is told when
someone will be there (``outside = "handoff"``), or the bot keeps the conversation and
says when the team is back (``outside = "bot"``).
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from botkit.language.tags import normalize_tag

__all__ = ["DAYS", "OfficeHours", "parse_ranges"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))")
# How far ahead the next opening is looked for: a year of dates off, then a week.
_LOOKAHEAD_DAYS = 400


def parse_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """``"09:00-12:30, 13:30-17:00"`` as minutes of the day, ``((540, 750), (810, 1020))``.

    Raises:
        ValueError: not ``HH:MM-HH:MM`` ranges, a range that ends before it starts (a
            night shift is two ranges: ``"22:00-24:00"`` and the next day's
            ``"00:00-06:00"``), or overlapping ranges.
    """
    ranges: list[tuple[int, int]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = _RANGE.fullmatch(part.replace(" ", ""))
        if match is None:
            raise ValueError(f"{part!r} is not a range like '09:00-17:30'")
        h1, m1, h2, m2, midnight, _ = match.groups()
        start = int(h1) * 60 + int(m1)
        end = 24 * 60 if midnight else int(h2) * 60 + int(m2)
        if end <= start:
            raise ValueError(
                f"{part!r} ends before it starts (split a night shift at midnight: "
                "'22:00-24:00' and the next day '00:00-06:00')"
            )
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in itertools.pairwise(ranges):
        if start < end:
            raise ValueError(f"ranges overlap in {text!r}")
    return tuple(ranges)


def _existing(moment: datetime) -> datetime:
    """``moment``, or when its wall time does not exist (skipped when the clocks went
    forward: 02:30 on a day that jumps from 02:00 to 03:00), the first minute after the
    gap, when the office really opens."""
    wall = moment.replace(tzinfo=None)
    for minutes in range(24 * 60 + 1):  # gaps are an hour, at most a day (Samoa, 2011)
        probe = wall + timedelta(minutes=minutes)
        candidate = probe.replace(tzinfo=moment.tzinfo)
        if candidate.astimezone(UTC).astimezone(moment.tzinfo).replace(tzinfo=None) == probe:
            return candidate
    return moment


class OfficeHours(BaseModel):
    """The ``[plugins.handoff.hours]`` table.

    Attributes:
        timezone: an IANA zone name, e.g. "Europe/Amsterdam".
        mon, tue, wed, thu, fri, sat, sun: that day's hours, e.g. "09:00-17:30" or
            "09:00-12:00, 13:00-17:00"; "" (the default) is closed; "00:00-24:00" all day.
        closed_dates: days off (holidays), "YYYY-MM-DD".
        outside: what a hand-off request does outside the hours: "handoff" hands the
            conversation over and tells the customer when a colleague will be there;
            "bot" keeps it with the bot and says when the team is back.
        weekdays: day names (Monday first) for languages without built-in ones (en, es,
            fr, de, pt, it), e.g. ``nl = ["maandag", ...]``; a language with none gets
            the date.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str
    mon: str = ""
    tue: str = ""
    wed: str = ""
    thu: str = ""
    fri: str = ""
    sat: str = ""
    sun: str = ""
    closed_dates: tuple[date, ...] = Field(default=(), max_length=1000)
    outside: Literal["handoff", "bot"] = "handoff"
    weekdays: dict[str, tuple[str, ...]] = Field(default_factory=dict, max_length=200)

    @field_validator("weekdays")
    @classmethod
    def _weekday_names(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for names in value.values():
            if len(names) != 7 or any(not n.strip() or len(n) > 40 for n in names):
                raise ValueError("give 7 day names, Monday first, e.g. nl = ['maandag', ...]")
        return {normalize_tag(k): tuple(n.strip() for n in v) for k, v in value.items()}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            # No zone at all: the system has no database and the tzdata package (a
            # dependency) is missing; no name would do, so do not blame this one.
            if not available_timezones():
                raise ValueError(
                    "no time-zone database found (install the tzdata package)"
                ) from None
            raise ValueError(f"{value!r} is not a known time zone (e.g. 'Europe/Amsterdam')") \
                from None  # fmt: skip
        return value

    @field_validator(*DAYS)
    @classmethod
    def _day(cls, value: str) -> str:
        parse_ranges(value)
        return value

    @model_validator(mode="after")
    def _ever_open(self) -> OfficeHours:
        if not any(self._week):
            raise ValueError("no day has hours: give at least one, e.g. mon = '09:00-17:00'")
        return self

    @cached_property
    def _week(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        return tuple(parse_ranges(getattr(self, day)) for day in DAYS)

    @cached_property
    def _off(self) -> frozenset[date]:
        return frozenset(self.closed_dates)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _ranges_on(self, day: date) -> tuple[tuple[int, int], ...]:
        return () if day in self._off else self._week[day.weekday()]

    def is_open(self, now: datetime) -> bool:
        """Whether ``now`` (timezone-aware) is inside the hours."""
        local = now.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self._ranges_on(local.date()))

    def next_opening(self, now: datetime) -> datetime | None:
        """When the hours next begin after ``now``, in the office's zone (None when no
        day in the coming year has hours: every one of them is a day off)."""
        local = now.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        for offset in range(_LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            for start, _ in self._ranges_on(day):
                if offset or start > minute:
                    wall = datetime.combine(day, time(start // 60, start % 60))
                    opening = _existing(wall.replace(tzinfo=self.zone))
                    # Moved past a gap, it may be at or past the range's end too (hours
                    # wholly in the skipped hour, or on the day Samoa skipped in 2011):
                    # the office does not open then, so look on.
                    if self.is_open(opening):
                        return opening
        return None
