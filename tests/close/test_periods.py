"""The close calendar: period labels, and when a period falls due (N-th working day after the cutoff)."""

from datetime import date, datetime

import pytest

from recon_pipeline.close.periods import CloseError, CloseSettings, close_due_at, parse_period, period_due_on


def test_period_labels_are_normalised_or_refused():
    assert parse_period("2025-3") == "2025-03"
    assert parse_period(" 2025-12 ") == "2025-12"
    for bad in ("2025-13", "2025/03", "202503", "", None, "2025-00"):
        with pytest.raises(CloseError, match="YYYY-MM"):
            parse_period(bad)


def test_due_on_the_third_working_day_after_the_cutoff_at_18():
    close = CloseSettings()
    # March 2025 ends on a Monday: Tue 1, Wed 2, Thu 3 April.
    assert close_due_at("2025-03", 16, close) == datetime(2025, 4, 3, 18)
    # May 2025 ends on a Saturday: Mon 2, Tue 3, Wed 4 June.
    assert close_due_at("2025-05", 16, close) == datetime(2025, 6, 4, 18)


def test_holidays_and_shifted_workdays_are_honoured():
    # Labour Day 2025: 1-5 May off, Sunday 27 April worked (调休).
    close = CloseSettings(holidays=frozenset(date(2025, 5, d) for d in range(1, 6)),
                          workdays=frozenset({date(2025, 4, 27)}))
    assert close_due_at("2025-04", 16, close) == datetime(2025, 5, 8, 18)
    assert period_due_on(date(2025, 5, 8), 16, close) == "2025-04"
    assert period_due_on(date(2025, 5, 7), 16, close) is None


def test_settings_section_is_read_and_checked(settings):
    import dataclasses

    raw = {**settings.raw, "close": {"auto_close": True, "due_working_days": 2, "holidays": ["2025-10-01"]}}
    close = CloseSettings.from_settings(dataclasses.replace(settings, raw=raw))
    assert close.auto_close and close.due_working_days == 2 and date(2025, 10, 1) in close.holidays
    bad = {**settings.raw, "close": {"holidays": ["10月1日"]}}
    with pytest.raises(CloseError, match="close"):
        CloseSettings.from_settings(dataclasses.replace(settings, raw=bad))
