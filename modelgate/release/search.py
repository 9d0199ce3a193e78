"""Recipe search: a plot of the size-vs-score table and its Pareto front.

The front itself is decided by ``modelgate.gates.pareto.pareto_front``. ``plot_pareto`` draws
with matplotlib's Agg backend (no display) into PNG and SVG files.
"""
from __future__ import annotations

from pathlib import Path

from modelgate.gates.values import is_number


def plot_pareto(rows: list[dict], front: list[str], out_base: Path, *, metric: str, baseline: float | None,
                higher_is_better: bool = True) -> list[Path]:
    """Scatter of size vs score (accepted recipes filled), the front as a line; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    pts = [r for r in rows if is_number(r.get("size")) and is_number(r.get("score"))]
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
    if baseline is not None and is_number(baseline):
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
