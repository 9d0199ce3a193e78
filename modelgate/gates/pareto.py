"""The Pareto front of a recipe search: pure, rows in, recipe names out.

A recipe is on the front when no other recipe is at once no larger and no worse, and strictly
better in one of the two. Rows without a finite size or score are left out.
"""
from __future__ import annotations

from modelgate.gates.values import is_number


def pareto_front(rows: list[dict], *, higher_is_better: bool = True) -> list[str]:
    """Recipes not dominated in (smaller ``size``, better ``score``); rows lacking either are left out.

    A row dominates another when it is no larger and no worse, and strictly better in one.
    Returned in ascending size.
    """
    pts = [r for r in rows if is_number(r.get("size")) and is_number(r.get("score"))]

    def better_eq(a, b):
        return a >= b if higher_is_better else a <= b

    front = []
    for r in pts:
        dominated = any(o is not r and o["size"] <= r["size"] and better_eq(o["score"], r["score"])
                        and (o["size"] < r["size"] or o["score"] != r["score"]) for o in pts)
        if not dominated:
            front.append(r)
    return [r["recipe"] for r in sorted(front, key=lambda r: (r["size"], r["recipe"]))]
