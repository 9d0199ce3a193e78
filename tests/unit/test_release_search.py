"""The plot of a recipe search (release/search.py)."""
from modelgate.gates.pareto import pareto_front
from modelgate.release.search import plot_pareto


def _rows(points):
    return [{"recipe": f"r{i}", "size": s, "score": c} for i, (s, c) in enumerate(points)]


def test_plot_writes_a_png_and_an_svg(tmp_path):
    rows = [dict(r, decision="ACCEPT") for r in _rows([(100, 0.9), (50, 0.95)])]
    files = plot_pareto(rows, pareto_front(rows), tmp_path / "pareto", metric="top1", baseline=0.96)
    assert [f.suffix for f in files] == [".png", ".svg"]
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in files[1].read_text()
