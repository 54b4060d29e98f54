"""Retention rules over dates: borg's calendar semantics, future ids, running backups, leases.

Table-driven over UTC backup ids (no time zone, no DST): month ends, leap years,
ISO weeks across the new year. Every case states what is kept and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from monctl.repository.retention import CLOCK_SKEW, INCOMPLETE_GRACE, Policy, decide

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class B:
    backup_id: str
    complete: bool = True
    newer_format: bool = False

    @property
    def created(self) -> datetime:
        return datetime.strptime(self.backup_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def at(text: str, complete: bool = True) -> B:
    """A backup started at ``text`` ("2026-11-29 14:00")."""
    when = datetime.strptime(text, "%Y-%m-%d %H:%M")
    return B(when.strftime("%Y%m%dT%H%M00Z"), complete)


def kept(entries: list[B], policy: Policy, now: datetime = NOW) -> dict[str, str]:
    """Kept backups as "YYYY-MM-DD HH:MM" -> reason."""
    out = {}
    for d in decide(entries, policy, now):
        if d.keep:
            t = datetime.strptime(d.backup_id, "%Y%m%dT%H%M%SZ")
            out[t.strftime("%Y-%m-%d %H:%M")] = d.reason
    return out


def daily(first: str, last: str, hour: int = 2, skip: tuple[str, ...] = ()) -> list[B]:
    day = datetime.strptime(first, "%Y-%m-%d")
    end = datetime.strptime(last, "%Y-%m-%d")
    found = []
    while day <= end:
        if day.strftime("%Y-%m-%d") not in skip:
            found.append(at(f"{day:%Y-%m-%d} {hour:02d}:00"))
        day += timedelta(days=1)
    return found


def test_borgs_worked_example_daily_weekly_monthly() -> None:
    """The example of borg's prune_split (research notes), in UTC: daily backups
    2026-10-01 .. 2026-11-29 without 11-20..22, plus a manual one on Sunday 14:00."""
    history = daily("2026-10-01", "2026-11-29", skip=("2026-11-20", "2026-11-21", "2026-11-22"))
    history.append(at("2026-11-29 14:00"))
    result = kept(history, Policy(keep_daily=7, keep_weekly=4, keep_monthly=3))
    assert result == {
        "2026-11-29 14:00": "newest complete backup",
        "2026-11-28 02:00": "daily #1",  # the 29th's newest was kept already: that day skipped
        "2026-11-27 02:00": "daily #2",
        "2026-11-26 02:00": "daily #3",
        "2026-11-25 02:00": "daily #4",
        "2026-11-24 02:00": "daily #5",
        "2026-11-23 02:00": "daily #6",
        "2026-11-19 02:00": "daily #7",  # days without a backup do not count
        "2026-11-15 02:00": "weekly #1",  # week 47's newest (the 19th) is kept: skipped
        "2026-11-08 02:00": "weekly #2",
        "2026-11-01 02:00": "weekly #3",
        "2026-10-25 02:00": "weekly #4",
        "2026-10-31 02:00": "monthly #1",  # November's newest is kept already
        "2026-10-01 02:00": "monthly[oldest] #2",  # not enough months: the oldest stays
    }


@pytest.mark.parametrize(
    ("policy", "history", "expected"),
    [
        # Month ends: the newest backup of each month is its last day's.
        (
            Policy(keep_monthly=3),
            daily("2026-01-27", "2026-04-02"),
            {"2026-04-02 02:00", "2026-03-31 02:00", "2026-02-28 02:00", "2026-01-31 02:00"},
        ),
        # A leap year: February ends on the 29th.
        (
            Policy(keep_monthly=2),
            daily("2028-01-30", "2028-03-01"),
            {"2028-03-01 02:00", "2028-02-29 02:00", "2028-01-31 02:00"},
        ),
        # ISO weeks across the new year: 2026-12-28, -31 and 2027-01-03 are all week 2026-53.
        (
            Policy(keep_weekly=2),
            [
                at("2026-12-21 02:00"),
                at("2026-12-28 02:00"),
                at("2026-12-31 02:00"),
                at("2027-01-03 02:00"),
                at("2027-01-04 02:00"),
            ],
            {"2027-01-04 02:00", "2027-01-03 02:00", "2026-12-21 02:00"},
        ),
        # Yearly keeps the newest of each year; short of 5 years, the oldest stays too.
        (
            Policy(keep_yearly=5),
            [
                at("2024-06-01 00:00"),
                at("2024-12-31 23:00"),
                at("2025-12-31 22:00"),
                at("2026-01-01 01:00"),
            ],
            {"2026-01-01 01:00", "2025-12-31 22:00", "2024-12-31 23:00", "2024-06-01 00:00"},
        ),
        # A rule that cannot fill its count keeps the oldest backup too (borg >= 1.2).
        (
            Policy(keep_daily=1, keep_monthly=6),
            [at("2026-01-01 00:00"), at("2026-01-02 00:00"), at("2026-03-15 00:00")],
            {"2026-03-15 00:00", "2026-01-02 00:00", "2026-01-01 00:00"},
        ),
        # keep_last and keep_days each keep what they keep on their own (a union).
        (
            Policy(keep_last=2, keep_days=4),
            daily("2026-11-20", "2026-11-30", hour=1),
            {f"2026-11-{d} 01:00" for d in ("30", "29", "28", "27")},
        ),
    ],
)
def test_calendar_rules(policy: Policy, history: list[B], expected: set[str]) -> None:
    now = max(NOW, max(b.created for b in history) + timedelta(hours=1))
    assert set(kept(history, policy, now)) == expected


def test_ids_from_the_future_never_count() -> None:
    history = [B("20991231T000000Z"), *daily("2026-11-20", "2026-11-30")]
    history.append(at("2026-11-30 11:30", complete=False))  # a backup running now
    decisions = {d.backup_id: d for d in decide(history, Policy(keep_last=1), NOW)}
    future = decisions["20991231T000000Z"]
    assert future.keep and "future" in future.reason
    # The real newest complete backup is still "the newest": the future one did not count.
    assert decisions[at("2026-11-30 02:00").backup_id].reason == "newest complete backup"
    assert decisions[at("2026-11-30 11:30").backup_id].keep  # a run in progress is spared
    assert [i for i, d in decisions.items() if not d.keep] == [
        b.backup_id for b in daily("2026-11-20", "2026-11-29")[::-1]
    ]
    # Within the clock-skew allowance an id is not "from the future".
    soon = NOW + CLOCK_SKEW - timedelta(minutes=1)
    near = B(soon.strftime("%Y%m%dT%H%M%SZ"))
    assert decide([near, *history[1:]], Policy(keep_last=1), NOW)[0].reason == (
        "newest complete backup"
    )


def test_incomplete_backups_survive_their_grace_period() -> None:
    history = [at("2026-11-30 02:00")]
    young = NOW - INCOMPLETE_GRACE + timedelta(hours=1)
    old = NOW - INCOMPLETE_GRACE - timedelta(hours=1)
    history += [B(t.strftime("%Y%m%dT%H%M%SZ"), complete=False) for t in (young, old)]
    decisions = {d.backup_id: d.keep for d in decide(history, Policy(keep_last=1), NOW)}
    assert list(decisions.values()) == [True, True, False]


def test_a_leased_backup_is_kept_whatever_the_rules() -> None:
    history = daily("2026-11-25", "2026-11-30")
    target = history[0].backup_id  # the oldest: the rules would delete it
    decisions = decide(
        history, Policy(keep_last=1), NOW, leased=lambda i: "restore" if i == target else None
    )
    by_id = {d.backup_id: d for d in decisions}
    assert by_id[target].keep and by_id[target].reason == "in use: restore"
    assert sum(not d.keep for d in decisions) == 4


def test_a_policy_needs_a_rule_and_no_negative_count() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Policy().check()
    with pytest.raises(ValueError, match="--keep-weekly cannot be negative"):
        Policy(keep_weekly=-1).check()


def test_a_backup_written_in_a_newer_format_is_never_deleted_nor_counted() -> None:
    history = daily("2026-11-25", "2026-11-29")
    newer = B(at("2026-11-20 02:00").backup_id, complete=False, newer_format=True)
    newest_newer = B(at("2026-11-30 02:00").backup_id, complete=False, newer_format=True)
    decisions = {
        d.backup_id: d for d in decide([*history, newer, newest_newer], Policy(keep_last=1), NOW)
    }
    assert decisions[newer.backup_id].keep  # older than the grace period: still kept
    assert "newer monctl" in decisions[newer.backup_id].reason
    # The newest backup this monctl can read is still "the newest complete".
    assert decisions[history[-1].backup_id].reason == "newest complete backup"
    assert sum(not d.keep for d in decisions.values()) == 4
