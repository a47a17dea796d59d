"""The demo's clock: times are int64 seconds since 2025-01-01 00:00 local (Asia/Shanghai, naive).

Vectorized helpers for working hours, month-end cutoffs, periods, drop schedules and text.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EPOCH = np.datetime64("2025-01-01T00:00:00", "s")
MINUTE = 60
HOUR = 3600
DAY = 86400
MISSING = np.iinfo(np.int64).min

# The demo world ends when the last drops are extracted on 2025-05-06 (day 125).
LAST_DROP_DAY = 125
HORIZON = LAST_DROP_DAY * DAY  # 2025-05-06 00:00: no event of the bank/ERP/legal world after it
AS_OF = "2025-05-06 09:00:00"
AS_OF_SECONDS = LAST_DROP_DAY * DAY + 9 * HOUR
# Last calendar day of January..April 2025, as day numbers.
MONTH_END_DAYS = (30, 58, 89, 119)


def day_of(seconds: np.ndarray) -> np.ndarray:
    return seconds // DAY


def weekday(days: np.ndarray | int) -> np.ndarray | int:
    """Monday = 0; day 0 (2025-01-01) was a Wednesday."""
    return (np.asarray(days) + 2) % 7


def working_time(rng: np.random.Generator, days: np.ndarray, start_hour: float = 9, end_hour: float = 18) -> np.ndarray:
    """A random second within office hours of each (integer) day."""
    days = np.asarray(days, dtype=np.int64)
    offsets = rng.integers(int(start_hour * HOUR), int(end_hour * HOUR), size=days.shape)
    return days * DAY + offsets


def office_after(rng: np.random.Generator, seconds: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """`seconds + gaps`, moved forward to the next morning when it falls outside 09:00-19:00:
    people approve, review and archive in office hours."""
    t = np.asarray(seconds, dtype=np.int64) + np.asarray(gaps, dtype=np.int64)
    day, second = t // DAY, t % DAY
    morning = 9 * HOUR + rng.integers(0, 2 * HOUR, size=t.shape)
    return np.where(second < 9 * HOUR, day * DAY + morning, np.where(second >= 19 * HOUR, (day + 1) * DAY + morning, t))


def cutoff_of_month_end(month_end_day: int, cutoff_hour: int) -> int:
    return month_end_day * DAY + cutoff_hour * HOUR


def recognized_period(seconds: np.ndarray, cutoff_hour: int) -> np.ndarray:
    """Month (YYYY-MM) of the first cutoff at or after each time; '' where the time is missing."""
    seconds = np.asarray(seconds, dtype=np.int64)
    valid = seconds != MISSING
    stamps = EPOCH + np.where(valid, seconds, 0).astype("timedelta64[s]")
    month = stamps.astype("datetime64[M]")
    cutoff = (month + 1).astype("datetime64[s]") - np.timedelta64(24 - cutoff_hour, "h")
    period = np.where(stamps <= cutoff, month, month + 1)
    text = np.datetime_as_string(period, unit="M")
    return np.where(valid, text, "")


def format_times(seconds: np.ndarray) -> pa.Array:
    """`YYYY-MM-DD HH:MM:SS` text ('' where missing), as an Arrow string array."""
    seconds = np.asarray(seconds, dtype=np.int64)
    valid = seconds != MISSING
    stamps = pa.array(EPOCH + np.where(valid, seconds, 0).astype("timedelta64[s]"), mask=~valid)
    return pc.fill_null(stamps.cast(pa.string()), "")  # Arrow prints timestamp[s] as `YYYY-MM-DD HH:MM:SS`


def format_dates(days: np.ndarray) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    valid = days != MISSING
    dates = pa.array((EPOCH + (np.where(valid, days, 0) * DAY).astype("timedelta64[s]")).astype("datetime64[D]"), mask=~valid)
    return pc.fill_null(dates.cast(pa.string()), "")


def day_label(day: int) -> str:
    return str((EPOCH + np.timedelta64(int(day) * DAY, "s")).astype("datetime64[D]"))


def format_cents(cents: np.ndarray) -> pa.Array:
    """Integer cents -> decimal yuan text (`1234.50`) through Arrow decimals: no float on the way."""
    values = pa.array(np.asarray(cents, dtype=np.int64)).cast(pa.decimal128(20, 0))
    yuan = pc.multiply(values, pa.scalar(Decimal("0.01"), pa.decimal128(3, 2))).cast(pa.decimal128(22, 2))
    return yuan.cast(pa.string())


def format_cents_grouped(cents: np.ndarray) -> list[str]:
    """With thousands separators (`1,234.50`), as Chinese bank portals print amounts."""
    out = []
    for value in np.asarray(cents, dtype=np.int64).tolist():
        whole, fen = divmod(abs(value), 100)
        out.append(f"{'-' if value < 0 else ''}{whole:,}.{fen:02d}")
    return out


class DropSchedule:
    """Extraction days of one source; a drop holds the changes since the previous extraction."""

    def __init__(self, days: np.ndarray, cut_seconds: int):
        self.days = np.unique(np.asarray(days, dtype=np.int64))
        self.cuts = self.days * DAY + cut_seconds

    def drop_day(self, event_seconds: np.ndarray) -> np.ndarray:
        """Drop day in which each event is first delivered; MISSING if after the last drop."""
        index = np.searchsorted(self.cuts, np.asarray(event_seconds, dtype=np.int64), side="right")
        delivered = index < len(self.days)
        return np.where(delivered, self.days[np.minimum(index, len(self.days) - 1)], MISSING)


def schedule_days(rng: np.random.Generator, first_day: int, weekdays: tuple[int, ...], skip_rate: float) -> np.ndarray:
    """Days from `first_day` to the last drop day on the given weekdays, some skipped (outages).
    The first day and the last drop day are always delivered."""
    days = np.arange(first_day, LAST_DROP_DAY + 1)
    days = days[np.isin(weekday(days), weekdays)]
    keep = rng.random(len(days)) >= skip_rate
    keep[0] = True
    days = days[keep]
    return np.union1d(days, [first_day, LAST_DROP_DAY])
