"""--eval-data and --calibration-data files: one JSONL schema per kind, every bad line named by number."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelgate.contract import GateInputError
from modelgate.openvino.quantize import BUILTIN_TEXT, resolve_calibration
from modelgate.release.eval_data import class_indices, load_eval_data, rows_sha256


def _write(tmp_path, lines, name="data.jsonl"):
    p = tmp_path / name
    p.write_bytes(b"".join((ln if isinstance(ln, bytes) else ln.encode("utf-8")) + b"\n" for ln in lines))
    return p


def _png(path, value=128, size=(8, 8)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, color=value).save(path)
    return path


@pytest.mark.parametrize("line,kind,expected", [
    ('{"id": "q1", "prompt": "What is the capital of France?", "answer": ["Paris"], "match": "contains"}', "qa",
     {"answers": ["Paris"], "match": "contains", "max_new_tokens": 32}),
    ('{"prompt": "2+2=", "answer": "4"}', "qa", {"answers": ["4"], "match": "exact", "id": "1"}),
    ('{"id": "c1", "prompt": "The color of snow is", "choices": ["white", "black"], "answer": 0}', "choice",
     {"choices": ["white", "black"], "answer": 0}),
    ('{"id": "t1", "text": "OpenVINO runs neural networks."}', "text", {"text": "OpenVINO runs neural networks."}),
    ('{"id": "p1", "prompt": "Write a haiku about rain."}', "prompt", {"prompt": "Write a haiku about rain."}),
    ('{"id": "s1", "text_a": "A man plays guitar.", "text_b": "Someone plays.", "score": 4.2, "scale_max": 5}',
     "pair", {"score": 4.2, "scale_max": 5.0}),
])
def test_each_kind_is_recognised_from_its_keys_and_normalised(tmp_path, line, kind, expected):
    got_kind, rows = load_eval_data(_write(tmp_path, [line]))
    assert got_kind == kind and len(rows) == 1
    assert {k: rows[0][k] for k in expected} == expected
    assert isinstance(rows[0]["id"], str)


@pytest.mark.parametrize("lines,needle", [
    (['{"prompt": "a", "answer": "b"}', '{"prompt": "a",'], "line 2: not valid JSON"),
    (['{"prompt": "a", "answer": "b"}', '{"prompt": "a", "prompt": "b", "answer": "c"}'], "line 2: not valid JSON: "
                                                                                            "duplicate key 'prompt'"),
    (['{"text": NaN}'], "line 1: not valid JSON: NaN"),
    (['{"prompt": "q", "choices": ["a", "b", "c"], "answer": 0}', '{"prompt": "q", "choices": ["a", "b", "c"], '
      '"answer": 3}'], "line 2: 'answer' must be the index of the right choice, an integer in [0, 2], got 3"),
    (['{"prompt": "q", "choices": ["a", "b"], "answer": true}'], "line 1: 'answer' must be the index"),
    (['{"prompt": "q", "choices": ["a", "b"], "answer": 0}', '{"text": "plain"}'], "line 2: a 'text' line in a "
                                                                                   "'choice' file"),
    (['{"prompt": "q", "answr": "a"}'], "line 1: unknown key(s) ['answr'] for a 'prompt' line"),
    (['{"prompt": "q", "answer": "a"}', '{"prompt": "q", "answr": "a"}'], "line 2: unknown key(s) ['answr'] for a "
                                                                          "'qa' line"),
    (['{"question": "q", "target": "a"}'], "line 1: keys ['question', 'target'] match no eval-data kind"),
    (['{"id": 7, "text": "a"}', '{"id": "7", "text": "b"}'], "line 2: duplicate id '7' (first on line 1)"),
    (['{"prompt": "q", "choices": ["a", "a"], "answer": 0}'], "line 1: 'choices' has duplicates"),
    (['{"text_a": "a", "text_b": "b", "score": 4.5}'], "line 1: 'score' must be a number in [0, 1], got 4.5"),
    (['{"image": "../../etc/passwd.png", "label": 1}'], "line 1: 'image' '../../etc/passwd.png' points outside"),
    (['["prompt", "answer"]'], "line 1: a line must be a JSON object, got list"),
    ([b'{"text": "caf\xe9"}'], "line 1: not UTF-8"),
    (['', '   '], "no data lines"),
    (['{"prompt": "q", "answer": "a", "max_new_tokens": 0}'], "line 1: 'max_new_tokens' must be an integer"),
    (['{"prompt": "q", "answer": []}'], "line 1: 'answer' must be a non-empty string or a non-empty list"),
    (['{"prompt": "", "answer": "a"}'], "line 1: 'prompt' must be a non-empty string"),
    (['{"text": "a"}', '{"text": "b", "id": true}'], "line 2: 'id' must be a non-empty string or an integer"),
])
def test_a_bad_line_is_an_input_error_naming_the_file_and_the_line(tmp_path, lines, needle):
    path = _write(tmp_path, lines)
    with pytest.raises(GateInputError) as exc:
        load_eval_data(path)
    assert exc.value.failure_class == "USER_CONFIG_ERROR" and exc.value.exit_code == 2
    assert str(path) in exc.value.detail and needle in exc.value.detail


def test_a_missing_file_and_an_oversized_line_are_input_errors(tmp_path):
    with pytest.raises(GateInputError, match="not found"):
        load_eval_data(tmp_path / "nope.jsonl")
    big = _write(tmp_path, ['{"text": "' + "x" * (1 << 20) + '"}'])
    with pytest.raises(GateInputError, match="line 1: line longer than"):
        load_eval_data(big)


def test_a_bom_and_blank_lines_are_tolerated_and_ids_default_to_line_numbers(tmp_path):
    path = _write(tmp_path, ['\ufeff{"text": "first"}', "", '{"text": "third"}'])
    kind, rows = load_eval_data(path)
    assert kind == "text" and [r["id"] for r in rows] == ["1", "3"]


def test_an_image_jsonl_and_an_image_folder_give_labelled_rows(tmp_path):
    import numpy as np

    _png(tmp_path / "imgs" / "a.png")
    np.save(tmp_path / "imgs" / "b.npy", np.zeros((1, 8, 8), dtype=np.float32))
    kind, rows = load_eval_data(_write(tmp_path, ['{"image": "imgs/a.png", "label": "cat"}',
                                                  '{"image": "imgs/b.npy", "label": "dog"}']))
    assert kind == "image" and class_indices(rows) == {"cat": 0, "dog": 1}
    folder = tmp_path / "folder"
    _png(folder / "zebra" / "1.png")
    _png(folder / "ant" / "2.png")
    kind, rows = load_eval_data(folder)
    assert kind == "image" and [(r["id"], r["label"]) for r in rows] == [("ant/2.png", 0), ("zebra/1.png", 1)]


def test_a_corrupt_image_is_refused_up_front(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(GateInputError, match="line 1: 'image' bad.png cannot be read"):
        load_eval_data(_write(tmp_path, ['{"image": "bad.png", "label": 0}']))


def test_an_image_folder_needs_two_classes(tmp_path):
    _png(tmp_path / "only" / "1.png")
    with pytest.raises(GateInputError, match="at least 2 class sub-folders"):
        load_eval_data(tmp_path)


def test_image_content_not_path_decides_the_data_hash(tmp_path):
    a, b = _png(tmp_path / "a" / "x.png", 10), _png(tmp_path / "b" / "x.png", 10)
    c = _png(tmp_path / "c" / "x.png", 200)
    row = {"id": "x", "label": 0}
    h = [rows_sha256("image", [dict(row, image=str(p))]) for p in (a, b, c)]
    assert h[0] == h[1] != h[2]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode),
                          st.dictionaries(st.sampled_from(["id", "prompt", "answer", "choices", "text", "score",
                                                           "text_a", "text_b", "match", "label", "image"]),
                                          st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                                                    st.text(max_size=10), st.lists(st.text(max_size=5), max_size=3)),
                                          max_size=4).map(lambda d: json.dumps(d).encode())),
                min_size=1, max_size=6))
def test_any_file_content_gives_rows_or_an_input_error_never_a_crash(tmp_path, lines):
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines))
    try:
        kind, rows = load_eval_data(path)
    except GateInputError as exc:
        assert exc.failure_class == "USER_CONFIG_ERROR" and str(path) in exc.detail
    else:
        assert rows and all(isinstance(r["id"], str) for r in rows) and len({r["id"] for r in rows}) == len(rows)


def test_calibration_defaults_to_the_packs_general_text_never_fixture_data(tmp_path):
    from modelgate import data

    cal = resolve_calibration("llm", None, tmp_path)
    assert cal["kind"] == "text" and cal["source"] == BUILTIN_TEXT and cal["samples"] >= 32
    fixture_lines = set(data.trained_lm_corpus()) | set(data.base_corpus())
    assert not fixture_lines & set(cal["texts"])


def test_calibration_text_from_a_file_and_a_kind_that_does_not_fit_the_model(tmp_path):
    path = _write(tmp_path, ['{"text": "one calibration paragraph."}', '{"text": "another."}'])
    cal = resolve_calibration("llm", path, tmp_path)
    assert cal["texts"] == ["one calibration paragraph.", "another."] and cal["source"] == str(path.resolve())
    assert cal["sha256"] != resolve_calibration("llm", None, tmp_path)["sha256"]
    with pytest.raises(GateInputError, match="cannot be used here"):
        resolve_calibration("classifier", path, tmp_path)
    with pytest.raises(GateInputError, match="calibration.npy"):
        resolve_calibration("classifier", None, tmp_path)


def test_a_bad_calibration_file_is_named_as_calibration_data_with_its_line(tmp_path):
    path = _write(tmp_path, ['{"text": "fine."}', '{"text": "fine", "txt": "typo"}'])
    with pytest.raises(GateInputError, match=r"^calibration data .* line 2: unknown key") as err:
        resolve_calibration("llm", path, tmp_path)
    assert err.value.exit_code == 2 and err.value.failure_class == "USER_CONFIG_ERROR"
    with pytest.raises(GateInputError, match=r"^eval data .* line 2"):
        load_eval_data(path)
