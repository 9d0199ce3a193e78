"""Recipe search: the size-vs-score table, its Pareto front, and a plot of it.

``pareto_front`` is pure (rows in, names out). ``plot_pareto`` draws with matplotlib's Agg
backend (no display) into PNG and SVG files.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def pareto_front(rows: list[dict], *, higher_is_better: bool = True) -> list[str]:
    """Recipes not dominated in (smaller ``size``, better ``score``); rows lacking either are left out.

    A row dominates another when it is no larger and no worse, and strictly better in one.
    Returned in ascending size.
    """
    pts = [r for r in rows if _num(r.get("size")) and _num(r.get("score"))]

    def better_eq(a, b):
        return a >= b if higher_is_better else a <= b

    front = []
    for r in pts:
        dominated = any(o is not r and o["size"] <= r["size"] and better_eq(o["score"], r["score"])
                        and (o["size"] < r["size"] or o["score"] != r["score"]) for o in pts)
        if not dominated:
            front.append(r)
    return [r["recipe"] for r in sorted(front, key=lambda r: (r["size"], r["recipe"]))]


def plot_pareto(rows: list[dict], front: list[str], out_base: Path, *, metric: str, baseline: float | None,
                higher_is_better: bool = True) -> list[Path]:
    """Scatter of size vs score (accepted recipes filled), the front as a line; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    pts = [r for r in rows if _num(r.get("size")) and _num(r.get("score"))]
    for i, r in enumerate(sorted(pts, key=lambda r: r["size"])):
        accepted = r.get("decision") == "ACCEPT"
        ax.scatter(r["size"] / 1e6, r["score"], s=60, marker="o" if accepted else "x",
                   color="tab:green" if accepted else "tab:red")
        ax.annotate(f"{r['recipe']} ({r.get('decision')})", (r["size"] / 1e6, r["score"]), fontsize=8,
                    xytext=(6, -14 + 12 * (i % 3)), textcoords="offset points")  # stagger: close points
        if r["recipe"] in front:
            ax.scatter(r["size"] / 1e6, r["score"], s=200, facecolors="none", edgecolors="tab:blue")
    fr = sorted((r for r in pts if r["recipe"] in front), key=lambda r: r["size"])
    if fr:
        ax.plot([], [], "o", mfc="none", mec="tab:blue", label="on the Pareto front")
        ax.plot([r["size"] / 1e6 for r in fr], [r["score"] for r in fr], "--", color="tab:blue", label="Pareto front")
    if baseline is not None and _num(baseline):
        ax.axhline(baseline, color="gray", linewidth=0.8, label="baseline")
    ax.margins(x=0.25, y=0.3)  # room for the labels inside the axes
    ax.set_xlabel("weight bytes (MB)")
    ax.set_ylabel(f"{metric} ({'higher' if higher_is_better else 'lower'} is better)")
    ax.set_title("day-0 recipe search: size vs score")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    out_base.parent.mkdir(parents=True, exist_ok=True)
    files = []
    for ext in ("png", "svg"):
        p = out_base.with_suffix(f".{ext}")
        tmp = p.with_name(f".{p.name}.tmp.{ext}")
        fig.savefig(tmp, format=ext)
        tmp.replace(p)
        files.append(p)
    plt.close(fig)
    return files
