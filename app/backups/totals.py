"""Totals of recent searches, kept while the backup lists have not changed.

Without a search the list's total comes from the trigger-kept counters. A search's total needs
every row read: ~30 ms with 100,000 backups on MariaDB when the term is in every name. Yet the
same search is asked for again and again: the dashboard polls every 30 seconds, and the next
page, another sort order or a refresh all need the same total.

So each process keeps the last totals it counted, each with the version of the lists it was
counted at (``backup_list_version``, changed by triggers in the same transaction as any change
that can move a backup in or out of a list: migration 0005). The page query reads the current
version in the same statement as the page's rows; a kept total is used only when its version is
that one, so it is exactly the total of the snapshot the page came from.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from app.db import Database

# Where the repositories find this process's totals (``session.info``; see ``keep_totals_for``).
TOTALS_KEY = "dbkeep.search_totals"

# Enough for every search a team has open at once; a total is a few hundred bytes.
CAPACITY = 512


@dataclass(frozen=True)
class KeptTotal:
    version: int
    total: int
    # The search prefilter's parameters it was counted with (app/backups/search.py), or None.
    grams: dict[str, Any] | None = None


class SearchTotals:
    """The most recently used search totals of one process, by filters."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[Any, KeptTotal] = OrderedDict()

    def get(self, filters: Any) -> KeptTotal | None:
        kept = self._kept.get(filters)
        if kept is not None:
            self._kept.move_to_end(filters)
        return kept

    def keep(
        self,
        filters: Any,
        *,
        version: int | None,
        total: int,
        grams: dict[str, Any] | None = None,
    ) -> None:
        """Keep ``total`` as counted at ``version``; None (no version row yet) keeps nothing."""
        if version is None:
            return
        self._kept[filters] = KeptTotal(version=version, total=total, grams=grams)
        self._kept.move_to_end(filters)
        while len(self._kept) > self._capacity:
            self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)


def keep_totals_for(database: Database) -> SearchTotals:
    """Keep search totals for the sessions of ``database`` from now on, and return them.

    Only a process that serves the backup lists needs them (the API); without them a search's
    total is counted on every request, which is correct, only slower.
    """
    totals = SearchTotals()
    database.offer(TOTALS_KEY, totals)
    return totals
