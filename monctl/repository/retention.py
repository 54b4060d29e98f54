"""Which backups retention keeps, and why: the rules of ``prune`` (and of ``backup --keep-*``).

A complete backup is kept when any rule keeps it:

- the newest complete backup, always (prune never deletes them all);
- ``keep_last`` N: the N newest complete backups;
- ``keep_days`` D: every complete backup started less than D days ago;
- ``keep_daily``/``weekly``/``monthly``/``yearly`` N: borg's (and borgmatic's)
  meaning — walking from the newest backup back, the newest backup of each day
  (ISO week, month, year) that holds one, for the N most recent such periods;
  periods without a backup do not count. These rules run in that order, after
  the two above, and a period whose newest backup an earlier rule already kept
  is skipped (borg's "backups selected by previous rules do not count towards
  those of later rules"); a rule that cannot fill its N keeps the oldest backup
  too (borg >= 1.2, "[oldest]"). Periods are UTC, like the backup ids.

``keep_last`` and ``keep_days`` keep what each of them keeps on its own (as
monctl always did); only the calendar rules count what was kept before them.

Never deleted, whatever the rules say: a backup whose id lies in the future
(beyond a clock-skew allowance: reported, and never counted by any rule, not
even as "newest"); an incomplete backup younger than the grace period or newer
than the newest complete one (it may be a backup still running); a backup that
holds an active lease (in use by a restore, a verify or a backup elsewhere); a backup
whose manifest is of a newer format than this monctl reads (written by a newer monctl:
whole as far as anyone can tell here; never counted by any rule either).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

CLOCK_SKEW = timedelta(minutes=10)
INCOMPLETE_GRACE = timedelta(hours=24)

_PERIODS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("daily", lambda t: t.strftime("%Y-%m-%d")),
    ("weekly", lambda t: "{:04d}-W{:02d}".format(*t.isocalendar()[:2])),
    ("monthly", lambda t: t.strftime("%Y-%m")),
    ("yearly", lambda t: t.strftime("%Y")),
)


class Candidate(Protocol):
    """What retention needs to know of a backup."""

    @property
    def backup_id(self) -> str: ...

    @property
    def complete(self) -> bool: ...

    @property
    def created(self) -> datetime: ...

    @property
    def newer_format(self) -> bool: ...


@dataclass(frozen=True)
class Policy:
    keep_last: int | None = None
    keep_days: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__dataclass_fields__)

    def check(self) -> None:
        """ValueError when no rule is given, one is negative, or every one is 0."""
        if self.empty:
            raise ValueError(
                "give at least one of --keep-last, --keep-days, --keep-daily, --keep-weekly, "
                "--keep-monthly, --keep-yearly"
            )
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name.replace('_', '-')} cannot be negative")
        given = [name for name in self.__dataclass_fields__ if getattr(self, name) is not None]
        if all(getattr(self, name) == 0 for name in given):
            # A rule of 0 keeps nothing: rules that are all 0 are no policy, and would
            # leave only the newest backup (borg refuses them too).
            flags = ", ".join(f"--{name.replace('_', '-')} 0" for name in given)
            raise ValueError(f"{flags} keeps nothing: give at least one rule above 0")


@dataclass(frozen=True)
class Decision:
    backup_id: str
    keep: bool
    reason: str  # the rule that keeps it, or why it goes


def decide(
    entries: Iterable[Candidate],
    policy: Policy,
    now: datetime,
    leased: Callable[[str], str | None] = lambda backup_id: None,
) -> list[Decision]:
    """A decision for each backup, newest first. ``leased(id)`` says who holds a
    lease on a backup (None: nobody); such a backup is kept whatever else holds."""
    policy.check()
    ordered = sorted(entries, key=lambda e: e.created, reverse=True)
    future = {e.backup_id for e in ordered if e.created > now + CLOCK_SKEW}
    complete = [e for e in ordered if e.complete and e.backup_id not in future]
    kept: dict[str, str] = {}
    if complete:
        kept[complete[0].backup_id] = "newest complete backup"
    if policy.keep_last:
        for i, e in enumerate(complete[: policy.keep_last], start=1):
            kept.setdefault(e.backup_id, f"last #{i}")
    if policy.keep_days is not None:
        horizon = now - timedelta(days=policy.keep_days)
        for e in complete:
            if e.created > horizon:
                kept.setdefault(e.backup_id, f"within {policy.keep_days} days")
    for rule, period_of in _PERIODS:
        wanted = getattr(policy, f"keep_{rule}")
        if wanted:
            _calendar(complete, rule, period_of, wanted, kept)
    newest = complete[0].created if complete else None
    decisions = []
    for e in ordered:
        holder = leased(e.backup_id)
        if e.backup_id in future:
            decision = Decision(e.backup_id, True, "id from the future (clock?): never counted")
        elif holder is not None:
            decision = Decision(e.backup_id, True, f"in use: {holder}")
        elif e.newer_format:  # not broken: unreadable to this monctl only
            decision = Decision(e.backup_id, True, "written by a newer monctl: never deleted")
        elif e.backup_id in kept:
            decision = Decision(e.backup_id, True, kept[e.backup_id])
        elif e.complete:
            decision = Decision(e.backup_id, False, "no rule keeps it")
        elif newest is None or e.created >= newest:
            decision = Decision(e.backup_id, True, "incomplete, not older than the newest complete")
        elif e.created > now - INCOMPLETE_GRACE:
            decision = Decision(e.backup_id, True, "incomplete, within the grace period")
        else:
            decision = Decision(e.backup_id, False, "incomplete")
        decisions.append(decision)
    return decisions


def _calendar(
    complete: list[Candidate],
    rule: str,
    period_of: Callable[[datetime], str],
    wanted: int,
    kept: dict[str, str],
) -> None:
    """borg's prune_split: the newest backup of each of the ``wanted`` latest periods."""
    count = 0
    last: str | None = None
    for e in complete:  # newest first
        period = period_of(e.created)
        if period == last:
            continue
        last = period
        if e.backup_id in kept:
            continue  # kept by an earlier rule: this period does not count
        count += 1
        kept[e.backup_id] = f"{rule} #{count}"
        if count == wanted:
            return
    oldest = complete[-1] if complete else None
    if oldest is not None and oldest.backup_id not in kept:
        kept[oldest.backup_id] = f"{rule}[oldest] #{count + 1}"
