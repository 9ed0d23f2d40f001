"""How many active records are there in each MAPPA category at each level?

The category x level table of the annual MAPPA report (000, para 2.10), counted over the
current-view read model (`current_view.py`), as it stands or, as of a past day, as it stood
then (a record in the area it was in on that day): it needs no table of its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.mappa import Category, Level
from projections.base import Filters
from projections.current_view import nominals_as_it_stood


async def report(conn: AsyncConnection, f: Filters) -> dict[str, Any]:
    """Every category x level cell (zeros included) and the total."""
    counted = (
        await conn.execute(
            text(
                "SELECT category, level, count(*) AS count"  # noqa: S608
                f" FROM ({nominals_as_it_stood(f)}) n"
                " WHERE n.status = 'active'"
                "   AND (CAST(:area AS text) IS NULL OR n.area = :area)"
                "   AND (CAST(:agency AS text) IS NULL OR n.lead_agency = :agency)"
                "   AND (CAST(:level AS integer) IS NULL OR n.level = :level)"
                "   AND (CAST(:category AS integer) IS NULL OR n.category = :category)"
                " GROUP BY category, level"
            ),
            f.params(),
        )
    ).all()
    counts = {(r.category, r.level): r.count for r in counted}
    cells = [
        {"category": int(c), "level": int(lv), "count": counts.get((int(c), int(lv)), 0)}
        for c in Category
        for lv in Level
        if (f.level is None or int(lv) == f.level) and (f.category is None or int(c) == f.category)
    ]
    return {
        "cells": cells,
        "total": sum(cell["count"] for cell in cells),
        "as_of": f.today.isoformat(),
    }
