"""Padded batches of the verification inputs: cut in run order, run when first taken, held one at a time."""
from modelgate.openvino.reference import BATCH_ROWS, LazyBatches, row_groups
from modelgate.verify import plan as plan_mod


def test_rows_are_cut_in_run_order_and_a_lone_entry_runs_alone():
    names = [f"seq{k}" for k in range(10)]
    groups = row_groups(names, 4)
    assert groups == [names[0:4], names[4:8], names[8:10]]
    assert row_groups(names[:5], 4) == [names[0:4]]  # seq4 alone: no batch for it
    assert all(len(g) <= BATCH_ROWS for g in row_groups(names))


def test_a_batch_runs_once_when_first_taken_and_its_outputs_are_dropped_as_taken():
    runs = []

    def run(group):
        runs.append(list(group))
        return {name: f"out-{name}" for name in group}

    lazy = LazyBatches([["a", "b"], ["c", "d"]], run)
    assert runs == [] and "a" in lazy and "e" not in lazy
    assert lazy.pop("a") == "out-a" and runs == [["a", "b"]]
    assert "a" not in lazy and len(lazy._ready) == 1  # b waits, a is gone
    assert lazy.pop("b") == "out-b" and lazy._ready == {}
    assert lazy.pop("c") == "out-c" and runs == [["a", "b"], ["c", "d"]]


def test_the_plan_marks_which_prompts_decode_one_token_per_call():
    class Tok:
        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": [1 + (ord(c) % 50) for c in text][:60]}

    plan = plan_mod.decoder_plan(Tok(), {"vocab_size": 64, "max_position_embeddings": 128}, 8)
    flags = [s["chunked"] for s in plan["sequences"]]
    assert flags == [False] * plan_mod.TOKEN_STEP_SEQUENCES + [True] * (len(flags) - plan_mod.TOKEN_STEP_SEQUENCES)
    cov = plan_mod.coverage_of(plan)
    steps = sum(len(s["ids"]) - s["prefill"] for s in plan["sequences"][: plan_mod.TOKEN_STEP_SEQUENCES])
    assert cov["kv_cache_steps"] == steps + len(plan["long"]["ids"]) - plan["long"]["prefill"]
    assert cov["kv_cache_chunk_tokens"] == sum(len(s["ids"]) - s["prefill"] for s in plan["sequences"] if s["chunked"])
