"""What makes verify cheaper must not change what it measures (real OpenVINO, real transformers).

- Greedy generation runs every prompt in one left-padded batch on both sides: the same tokens as
  prompt by prompt, logits equal to float rounding, on a rotary and a learned-position decoder.
- Most teacher-forced prompts continue as one chunk after the cached prompt: the same logits as one
  token per call.
- A 16-bit checkpoint stays 16-bit in the source run and computes in f32 module by module: the
  numbers of an f32 load, bit for bit, and its verification passes and catches a fault.
"""
import json

import numpy as np
import openvino as ov
import pytest
import torch

from modelgate import contract, fixtures
from modelgate.cli.verify import make_result
from modelgate.gates.verify import evaluate_verify, tolerances_for
from modelgate.openvino import layerwise, reference
from modelgate.openvino.convert import export_cached
from modelgate.verify import plan as plan_mod
from modelgate.verify.observe import Request, _hf_tokenizer, observe

pytestmark = pytest.mark.integration


def decoder_plan(arch: str) -> dict:
    src = fixtures.hf_model(arch)
    return plan_mod.decoder_plan(_hf_tokenizer(str(src)), json.loads((src / "config.json").read_text()), 12)


def compiled(arch: str, wf: str = "fp32"):
    core = ov.Core()
    model = core.read_model(str(export_cached(fixtures.hf_model(arch), wf) / "openvino_model.xml"))
    return core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_batched_greedy_gives_the_tokens_of_one_prompt_at_a_time_on_both_sides(arch):
    plan = decoder_plan(arch)
    prompts = plan["greedy"]
    assert len({len(p) for p in prompts}) > 1  # padding is really exercised
    runner = layerwise._Decoder(compiled(arch))
    one, batch = [runner.greedy(p, 12) for p in prompts], runner.greedy_batch(prompts, 12)
    for a, b in zip(one, batch):
        assert a["generated"] == b["generated"] and a["logits"].shape == b["logits"].shape
        assert np.abs(a["logits"] - b["logits"]).max() <= 1e-4 * np.abs(a["logits"]).max()
    model = reference.load_source(str(fixtures.hf_model(arch)), "decoder")
    s_one, s_batch = reference.greedy_runs(model, prompts, 12), reference.greedy_runs_batched(model, prompts, 12)
    for a, b in zip(s_one, s_batch):
        assert a["generated"] == b["generated"]
        assert np.abs(a["logits"] - b["logits"]).max() <= 1e-4 * np.abs(a["logits"]).max()


def test_a_chunked_continuation_reads_the_cache_like_one_token_per_call():
    plan = decoder_plan("llama")
    seq = next(s for s in plan["sequences"] if s["chunked"])
    runner = layerwise._Decoder(compiled("llama"))
    _, steps = runner.run(seq["ids"], seq["prefill"], chunked=False)
    _, chunk = runner.run(seq["ids"], seq["prefill"], chunked=True)
    assert steps.shape == chunk.shape == (len(seq["ids"]), steps.shape[1])
    assert np.abs(steps - chunk).max() <= 1e-4 * np.abs(steps).max()
    cov = plan_mod.coverage_of(plan)
    assert cov["kv_cache_steps"] > 0 and cov["kv_cache_chunk_tokens"] > 0  # both cache paths are covered


def test_a_bf16_checkpoint_is_computed_in_f32_without_an_f32_copy():
    src = fixtures.hf_model("llama-deep-bf16")
    from transformers import AutoModelForCausalLM
    widened = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()
    model = reference.load_source(str(src), "decoder")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    ids = torch.randint(0, 300, (2, 50), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(ids).logits, widened(ids).logits)  # bf16 widens to f32 exactly
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # storage put back after the call
    with pytest.raises(IndexError), torch.no_grad():
        model(torch.tensor([[10_000]]))  # an id past the vocabulary: the embedding raises
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # ... and the storage is still restored


@pytest.mark.parametrize("wf", ["fp16", "int8"])
def test_a_bf16_checkpoints_good_export_is_verified(wf):
    src = fixtures.hf_model("llama-deep-bf16")
    req = Request(model=str(src), converted=str(export_cached(src, wf)), in_process=True)
    obs = observe(req)
    v = make_result(evaluate_verify(obs, tolerances_for(obs["weight_format"])), obs, req.evidence, req.timings)
    assert contract.schema_errors("verify-result", contract.stamp(v)) == []
    assert v["decision"] == "VERIFIED", v["detail"]
