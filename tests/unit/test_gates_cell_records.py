"""Evidence records of a finished cell (pure): outputs are judged against the item they answer."""
from modelgate.gates import cell_records as C

DOC = {"oracles": {}, "gates": {"reference_agreement": {"openvino-fp32": 1.0}}}


def _cell(kind, items, repeats=1, modality="run", fmt="openvino-fp32"):
    return {"id": f"{fmt}/CPU/{modality}/s", "format": fmt, "device": "CPU", "modality": modality, "scenario": "s",
            "kind": kind, "timeout_ms": 1000, "items": items, "repeats": repeats, "fault": None}


def _obs(outputs):
    return {"load_ok": True, "load_ms": 1.0, "outputs": outputs, "peak_rss_mb": 10.0}


def test_a_prompt_run_several_times_is_compared_with_its_own_ground_truth():
    """repeats on a prompts cell once produced 6 outputs for 2 prompts and a spurious G4 block
    ("no prompts compared with the ground truth")."""
    ref = {"run": {"a b": {"tokens": [1, 2, 3]}, "c d": {"tokens": [4, 5, 6]}}}
    outs = [{"prompt": p, "tokens": ref["run"][p]["tokens"], "text": "x y z", "duration_ms": 5.0}
            for p in ("a b", "c d") for _ in range(3)]
    recs = {r["check"]: r for r in C.cell_records(_cell("prompts", ["a b", "c d"], 3), _obs(outs), ref, DOC, 10.0)}
    assert recs["F-REGR-REF-001"]["outcome"] == "Corroborated", recs["F-REGR-REF-001"]["reason"]
    assert "over 6 prompts" in recs["F-REGR-REF-001"]["reason"]


def test_outputs_are_paired_with_their_prompt_not_their_position():
    ref = {"run": {"a b": {"tokens": [1, 2]}, "c d": {"tokens": [3, 4]}}}
    outs = [{"prompt": "c d", "tokens": [3, 4], "text": "x", "duration_ms": 1.0},
            {"prompt": "a b", "tokens": [1, 2], "text": "y", "duration_ms": 1.0}]
    recs = C.cell_records(_cell("prompts", ["a b", "c d"]), _obs(outs), ref, DOC, 10.0)
    assert next(r for r in recs if r["check"] == "F-REGR-REF-001")["outcome"] == "Corroborated"


def test_a_long_number_answering_arithmetic_is_not_degenerate():
    q = "What is 1000000 times 1000000?"
    outs = [{"prompt": q, "tokens": [7], "text": "1000000000000", "duration_ms": 1.0}]
    recs = C.cell_records(_cell("arithmetic", [q]), _obs(outs), {"run": {q: {"tokens": [7]}}}, DOC, 1.0)
    by = {r["check"]: r["outcome"] for r in recs}
    assert by["F-QUAL-DEGEN-001"] == "Corroborated" and by["F-QUAL-ARITH-001"] == "Corroborated"


def test_a_symbolic_exact_answer_is_judged_as_symbols():
    pair = {"prompt": "draw a rule", "answer": "----------"}
    outs = [{"prompt": "draw a rule", "tokens": [9], "text": "----------", "duration_ms": 1.0}]
    recs = C.cell_records(_cell("exact", [pair]), _obs(outs), {"run": {"draw a rule": {"tokens": [9]}}}, DOC, 1.0)
    assert {r["check"]: r["outcome"] for r in recs}["F-QUAL-DEGEN-001"] == "Corroborated"
    # the same output to a prose prompt has no content
    recs = C.cell_records(_cell("prompts", ["draw a rule"]), _obs(outs), {"run": {"draw a rule": {"tokens": [9]}}},
                          DOC, 1.0)
    assert {r["check"]: r["outcome"] for r in recs}["F-QUAL-DEGEN-001"] == "Falsified"


def test_an_output_without_a_question_is_falsified_not_dropped():
    outs = [{"text": "4", "tokens": [1], "duration_ms": 1.0}, {"text": "4", "tokens": [1], "duration_ms": 1.0}]
    recs = C.cell_records(_cell("arithmetic", ["What is 2+2?"], modality="chat"), _obs(outs),
                          {"retokenized": {"s": [[1]]}}, DOC, 1.0)
    arith = [r for r in recs if r["check"] == "F-QUAL-ARITH-001"]
    assert [r["outcome"] for r in arith] == ["Corroborated", "Falsified"]
