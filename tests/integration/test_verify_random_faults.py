"""The random fault suite, a sample in pytest (``scripts/bench_faults.py`` runs hundreds of draws).

Draws (tensor of any role, layer, perturbation) on good IRs of a rotary decoder, a learned-position
decoder and an encoder classifier. The oracle measures first whether a draw moves some hidden state
beyond the good export's spread (on holdout inputs); every such fault must be caught, every good
export must pass, and a draw the oracle calls harmless must not be rejected as a layer-wise fault
far beyond its own size.
"""
import numpy as np
import pytest

from tests.support import fault_draws, fault_suite

pytestmark = pytest.mark.integration

CELLS = (("llama-deep-bf16", "int8"), ("gpt2-deep", "fp16"), ("bert-deep", "int8"))  # llama: a bf16 checkpoint
DRAWS_PER_CELL = 7   # 21 draws in all


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    work = tmp_path_factory.mktemp("fault-cells")
    return [fault_suite.prepare(arch, wf, work) for arch, wf in CELLS]


@pytest.mark.parametrize("index", range(len(CELLS)))
def test_the_good_export_of_every_architecture_passes(cells, index):
    v = fault_suite.verify(cells[index], cells[index].good_ir)
    assert v["pass"] is True and v["decision"] == "VERIFIED", v["detail"]


@pytest.mark.parametrize("index", range(len(CELLS)))
def test_every_random_fault_that_moves_a_hidden_state_is_caught(cells, index, tmp_path):
    cell = cells[index]
    rng = np.random.default_rng(1000 + index)
    rows = [fault_suite.run_draw(cell, fault_draws.draw(rng, cell.catalog), tmp_path) for _ in range(DRAWS_PER_CELL)]
    applied = [r for r in rows if r.get("applied")]
    assert len(applied) >= DRAWS_PER_CELL - 2, [r.get("error") for r in rows]
    missed = [(r["label"], r["oracle"]) for r in applied if r["oracle"]["fault"] and not r["caught"]]
    assert missed == []
    for r in applied:  # a rejection names a class the triage can act on
        if r["caught"]:
            assert r["failure_class"] in ("FIDELITY_REGRESSION", "INTEGRITY_MISMATCH", "NUMERICAL_INSANE",
                                          "DEGENERATE_OUTPUT", "LOAD_FAILED", "PLUGIN_CRASH"), r
