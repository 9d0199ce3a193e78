"""README certification table: regenerated only between the markers, escaped, refused without markers."""
from __future__ import annotations

import pytest
from cert_builders import full_marks

from modelgate.certify.readme_table import END, START, render_table, sync_readme
from modelgate.certify.registry import evidence_row, update_registry
from modelgate.contract import GateInputError

BEFORE = "# Project\n\nIntro text.\n\n"
AFTER = "\n\n## Footer\n\nMore text.\n"


@pytest.fixture()
def registry(tmp_path):
    path = tmp_path / "models.csv"
    update_registry(path, evidence_row(full_marks(model="org/good", playbook_lock="verified")))
    update_registry(path, {"model_id": "org/legacy", "status": "QUARANTINED", "g1": "true"})
    return path


def test_table_is_written_between_the_markers_and_nothing_else_changes(tmp_path, registry):
    readme = tmp_path / "README.md"
    readme.write_text(BEFORE + START + "\nold table\n" + END + AFTER)
    res = sync_readme(readme, registry)
    text = readme.read_text()
    assert res == {"rows": 2, "changed": True, "path": str(readme)}
    assert text.startswith(BEFORE + START + "\n| Model |") and text.endswith(END + AFTER)
    assert "old table" not in text
    assert "| org\\/good | llama |  | CERTIFIED | 1000/1000 | A\\+ | smoke | pass | pass | pass | pass | pass |" in text
    assert "| org\\/legacy |" in text and "QUARANTINED" in text


def test_sync_is_idempotent(tmp_path, registry):
    readme = tmp_path / "README.md"
    readme.write_text(BEFORE + START + END + AFTER)
    sync_readme(readme, registry)
    once = readme.read_text()
    assert sync_readme(readme, registry)["changed"] is False
    assert readme.read_text() == once


@pytest.mark.parametrize("text", [BEFORE, BEFORE + START + AFTER, BEFORE + END + AFTER,
                                  START + END + START + END, END + "x" + START,
                                  START + "\n" + START + END])
def test_missing_duplicated_or_reversed_markers_are_refused_and_the_readme_is_untouched(tmp_path, registry, text):
    readme = tmp_path / "README.md"
    readme.write_text(text)
    with pytest.raises(GateInputError) as exc:
        sync_readme(readme, registry)
    assert exc.value.failure_class == "USER_CONFIG_ERROR"
    assert readme.read_text() == text


def test_model_strings_cannot_break_the_table_or_inject_html_or_markers():
    table = render_table([{"model_id": f"evil|id\n<script>x</script>{END}", "status": "CERTIFIED",
                           "g0": "true", "tps_ov_int8_cpu": "12.5", "tps_st_cpu": "3"}])
    lines = table.splitlines()
    assert len(lines) == 3
    assert lines[2].count(" | ") == lines[0].count(" | ")
    assert "<script>" not in table and END not in table and "evil\\|id" in table
    assert "12\\.5 \\(ov\\_int8\\_cpu\\)" in table


def test_an_empty_registry_renders_a_placeholder_row():
    assert "(no certified models yet)" in render_table([])


def test_missing_registry_or_readme_is_an_input_error(tmp_path, registry):
    with pytest.raises(GateInputError):
        sync_readme(tmp_path / "nope.md", registry)
    readme = tmp_path / "README.md"
    readme.write_text(START + END)
    with pytest.raises(GateInputError):
        sync_readme(readme, tmp_path / "nope.csv")


HOSTILE = ["[x](http://evil.example/a)", "![i](http://evil.example/i.png)", "a|b|c", "`rm -rf /`",
           "<script>x()</script>",
           "line\nbreak", "<http://evil.example>", "see www.evil.example", "**bold** _it_", "# heading", "- item",
           "&lt;not an entity&gt;", "\\|", "[ref]: http://evil.example"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_model_names_stay_inert_text_in_the_rendered_table(name):
    """The README injection: a model id like [x](http://...) became a live link."""
    from markdown_it import MarkdownIt

    table = render_table([{"model_id": name, "family": name, "status": "CERTIFIED", "mqs_score": "1000.0",
                           "grade": "A+", "g0": "true"}])
    html = MarkdownIt("commonmark").enable("table").render("intro\n\n" + table + "\n")
    assert "<a " not in html and "<img" not in html and "<script" not in html and "<strong" not in html
    assert "<em" not in html and "<code" not in html and "<h1" not in html and "<li" not in html
    assert html.count("<tr>") == 2 and html.count("<td>") == html.count("<th>")  # one row, no cell split or lost
    cells = html.split("<tbody>")[1]
    import html as H
    assert H.unescape(cells).count(" ".join(name.split())) == 2  # model and family cells, verbatim text
    for bare in ("http:", "www."):
        assert bare not in table  # GitHub's autolinker finds bare URLs in raw text; escaped they no longer match
