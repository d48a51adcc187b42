"""The backup search's trigram prefilter on MySQL/MariaDB (the table of migration 0003).

Triggers keep, for every backup, the three-character pieces ("grams") of its lower-cased
filename and unique identifier; a backup whose name is not plain ASCII gets the marker gram ''
instead. A search of at least three ASCII characters then only checks, with the same LIKE as
always, the backups that hold its first and last gram, plus the marked ones: an index range
instead of reading every row. The LIKE still decides, so results never change.

A gram most backups hold ("bac" of "backup") narrows nothing and costs more to read than the
rows: a cheap, bounded count first leaves such grams out, and the search scans when both are.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, String, bindparam, column, func, literal, select, table, union

# Tables that migrations make outside the ORM models (autogenerate must not drop them).
TABLES_OUTSIDE_MODELS = frozenset({"backup_search_grams"})

GRAM_SIZE = 3
NOT_ASCII = ""
# Past this many backups holding a gram, reading its index entries costs more than it saves.
COMMON_GRAM = 5_000

_grams = table("backup_search_grams", column("gram", String(3)), column("backup_id", BigInteger))


def search_grams(search: str) -> dict[str, Any] | None:
    """The prefilter's parameters for ``search``, or None when it can't help (the term is
    shorter than a gram, or not ASCII, where collations fold letters in ways grams don't)."""
    term = search.lower()
    if len(term) < GRAM_SIZE or not term.isascii():
        return None
    first, last = term[:GRAM_SIZE], term[-GRAM_SIZE:]
    return {"gram_first": first, "gram_last": last, "grams_needed": len({first, last})}


def gram_counts() -> Any:
    """How many backups hold ``gram_first`` and ``gram_last``, each counted up to just past
    ``COMMON_GRAM`` (an index range of bounded length, whatever the table's size)."""

    def bounded_count(name: str) -> Any:
        holders = (
            select(literal(1)).where(_grams.c.gram == bindparam(name)).limit(COMMON_GRAM + 1)
        ).subquery()
        return select(func.count()).select_from(holders).scalar_subquery()

    return select(bounded_count("gram_first"), bounded_count("gram_last"))


def narrowed(grams: dict[str, Any], counts: tuple[int, int]) -> dict[str, Any] | None:
    """``grams`` without those too common to help; None when none is left (scan instead)."""
    rare = [
        gram
        for gram, count in zip((grams["gram_first"], grams["gram_last"]), counts, strict=True)
        if count <= COMMON_GRAM
    ]
    if not rare:
        return None
    return {"gram_first": rare[0], "gram_last": rare[-1], "grams_needed": len(set(rare))}


def candidates() -> Any:
    """Ids of the backups the search must check (binds: ``search_grams``' parameters)."""
    holding_both = (
        select(_grams.c.backup_id)
        .where(_grams.c.gram.in_([bindparam("gram_first"), bindparam("gram_last")]))
        .group_by(_grams.c.backup_id)
        .having(func.count() == bindparam("grams_needed"))
    )
    not_ascii = select(_grams.c.backup_id).where(_grams.c.gram == NOT_ASCII)
    return union(holding_both, not_ascii).subquery("candidates")


def include_name(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Alembic's filter: leave the tables made outside the models alone."""
    return not (type_ == "table" and name in TABLES_OUTSIDE_MODELS)
