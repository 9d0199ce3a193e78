"""What a verification feeds the model: the input plan, sized so every metric has resolution.

Decoder LMs get many prompts of varied length (shuffled corpus text and seeded random ids), each
continued token by token through the KV cache; greedy generation from several prompts; and one
prompt that reaches deep positions (the position sweep, up to min(2,048, the model's maximum)), whose
block outputs are compared at sampled positions. Encoders get many sentences padded per batch plus
rows of their maximum length. The plan is plain data (lists, numpy arrays): it is pickled to the
child processes and both sides of the comparison run exactly these inputs.
"""
from __future__ import annotations

from modelgate.openvino import inputs as inputs_mod

SEQUENCES = 16          # teacher-forced prompts (decoder)
PROMPT_LENGTHS = (8, 64)
CONTINUATION = 8        # tokens run through the KV cache after each prompt
TOKEN_STEP_SEQUENCES = 4  # of the prompts, these continue one token per call (the decode path); the others
                          # feed their continuation as one chunk after the cached prompt (the cache read path),
                          # as greedy generation already decodes one token per call
GREEDY_PROMPTS = 8      # prompts generated from greedily (decoder)
GREEDY_HORIZON = 8      # greedy agreement is judged on the first 8 new tokens of each prompt
MIN_NEW_TOKENS = 4      # fewer cannot show a degenerate (constant / period-2) run or resolve greedy agreement
LONG_LIMIT = 2048       # the position sweep reaches min(LONG_LIMIT, max positions)
MIN_POSITIONS = 64      # a shorter sweep cannot reach past the first position bucket
LONG_CONTINUATION = 16
LONG_SAMPLES = 128      # positions of the long prompt whose block outputs are compared
ENCODER_SENTENCES = 64
ENCODER_BATCH = 16
ENCODER_LONG_ROWS = 2   # rows of the maximum length (encoders)
MAX_POSITION_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length")


def max_positions(config: dict) -> int | None:
    """The longest sequence the model's config allows (None when it does not say)."""
    for key in MAX_POSITION_KEYS:
        v = config.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def sweep_length(config: dict, positions: int | None) -> int:
    """The position sweep's length: ``positions`` when given (capped by the model), else
    min(LONG_LIMIT, the model's maximum); at least MIN_POSITIONS when the model allows it."""
    limit = max_positions(config) or LONG_LIMIT
    want = positions if positions is not None else min(LONG_LIMIT, limit)
    return max(min(want, limit), min(MIN_POSITIONS, limit))


def decoder_plan(tokenizer, config: dict, new_tokens: int, positions: int | None = None,
                 greedy_texts: tuple[str, ...] = inputs_mod.TEXT_PROMPTS, seed: int = inputs_mod.DEFAULT_SEED) -> dict:
    """The inputs of a decoder LM verification (see the module doc); ``seed`` draws other prompts of the
    same kind (a holdout set)."""
    vocab = int(config.get("vocab_size") or 0)
    if vocab <= 0:
        raise ValueError("config.json has no vocab_size: cannot draw token ids")
    sequences = inputs_mod.decoder_sequences(tokenizer, vocab, SEQUENCES, PROMPT_LENGTHS[0], PROMPT_LENGTHS[1],
                                             CONTINUATION, seed)
    for k, s in enumerate(sequences):
        s["chunked"] = k >= TOKEN_STEP_SEQUENCES
    greedy = [[int(i) for i in tokenizer(t)["input_ids"]] for t in greedy_texts]
    greedy += [s["ids"][: s["prefill"]] for s in sequences[0::2]][: max(0, GREEDY_PROMPTS - len(greedy))]
    length = sweep_length(config, positions)
    long = inputs_mod.long_sequence(tokenizer, length, LONG_CONTINUATION, seed + 7)
    long["keep"] = sorted(set(inputs_mod.sampled_positions(long["prefill"], LONG_SAMPLES))
                          | set(range(long["prefill"], length)))
    return {"kind": "decoder", "sequences": sequences, "long": long, "greedy": greedy, "new_tokens": new_tokens,
            "greedy_horizon": min(GREEDY_HORIZON, new_tokens), "max_positions": max_positions(config)}


def encoder_plan(tokenizer, config: dict, seed: int = inputs_mod.DEFAULT_SEED) -> dict:
    """The inputs of a single-pass text model verification (classifier, fill-mask, embeddings...)."""
    length = max_positions(config) or 512
    batches = inputs_mod.encoder_batches(tokenizer, ENCODER_SENTENCES, ENCODER_BATCH, length, ENCODER_LONG_ROWS,
                                         seed)
    return {"kind": "encoder", "batches": batches, "max_length": length, "max_positions": max_positions(config)}


def coverage_of(plan: dict) -> dict:
    """What the plan exercises: prompts, compared tokens, longest position, decode steps."""
    if plan["kind"] == "decoder":
        seqs = plan["sequences"]
        long = plan.get("long")
        tokens = sum(len(s["ids"]) for s in seqs) + (len(long["keep"]) if long else 0)
        return {"prompts": len(seqs) + (1 if long else 0), "greedy_prompts": len(plan.get("greedy") or []),
                "new_tokens": plan["new_tokens"], "greedy_horizon": plan["greedy_horizon"],
                "compared_tokens": tokens, "longest_position": (len(long["ids"]) - 1) if long else
                max(len(s["ids"]) for s in seqs) - 1,
                "kv_cache_steps": sum(len(s["ids"]) - s["prefill"] for s in seqs if not s.get("chunked"))
                + ((len(long["ids"]) - long["prefill"]) if long else 0),
                "kv_cache_chunk_tokens": sum(len(s["ids"]) - s["prefill"] for s in seqs if s.get("chunked")),
                "max_positions": plan.get("max_positions")}
    rows = sum(int(b["input_ids"].shape[0]) for b in plan["batches"])
    tokens = sum(int(b["attention_mask"].sum()) if "attention_mask" in b else int(b["input_ids"].size)
                 for b in plan["batches"])
    longest = max(int(b["input_ids"].shape[1]) for b in plan["batches"]) - 1
    return {"inputs": rows, "compared_tokens": tokens, "longest_position": longest,
            "max_positions": plan.get("max_positions")}
