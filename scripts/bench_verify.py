#!/usr/bin/env python3
"""Benchmark verify-conversion against the raw export at real sizes; prints one JSON object of ratios.

    python scripts/bench_verify.py --params 200M,800M [--weight-format fp16] [--dtype bfloat16] [--models-dir DIR]

For each size a random-weight llama is built offline from a config (seeded, sharded safetensors,
cached in --models-dir), then, one after the other in the same run:

- raw: the bare ``optimum-cli export openvino`` of that checkpoint;
- verify: ``modelgate verify --model <checkpoint> --weight-format <fmt>`` (export + the checks);
- raw again, to show how much the other tenants of the machine moved the numbers.

Each is one process tree, sampled every 0.1 s: wall time, CPU seconds of every descendant, and the
peak of the summed resident memory of the whole tree (plus the largest single process's high-water
mark, which sampling cannot miss). Ratios are verify / raw (the first raw run).
Targets at 800 M (the layer-wise issue): time <= 1.15x, peak memory <= 1.05x.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {  # name -> (hidden, intermediate, layers, heads)
    "50M": (512, 1408, 8, 8),
    "200M": (1024, 2816, 10, 16),
    "800M": (2048, 5632, 13, 16),
    "1.5B": (2048, 5632, 28, 16),
}
VOCAB = 32000
TARGETS = {"time_ratio": 1.15, "memory_ratio": 1.05}
SHARD_BYTES = 400 << 20


def build_llama(size: str, out: Path, seed: int = 0, dtype: str = "float32") -> int:
    """A random llama of ``size`` (variance-preserving init, decisive logits), written shard by shard so
    the build never holds the whole model, stored in ``dtype`` (float32, or bfloat16 as most released
    models are). Returns the parameter count."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    from modelgate import data
    from modelgate.fixtures import _bpe_tokenizer

    hidden, inter, layers, heads = SIZES[size]
    torch.manual_seed(seed)
    tok = _bpe_tokenizer(320, data.base_corpus() + data.counting_lines(12), model_max_length=2048)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=2048,
                      tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    with torch.device("meta"):
        meta = LlamaForCausalLM(cfg)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shard, size_now, index, k, n = {}, 0, {}, 0, 0

    def flush():
        nonlocal shard, size_now, k
        if shard:
            k += 1
            name = f"model-{k:05d}.safetensors"
            save_file(shard, str(tmp / name), metadata={"format": "pt"})
            index.update(dict.fromkeys(shard, name))
            shard, size_now = {}, 0

    for name, p in meta.named_parameters():
        t = torch.empty(p.shape, dtype=torch.float32)
        if p.dim() == 1:
            t.fill_(1.0)
        elif "embed_tokens" in name:
            t.normal_(0.0, 1.0)
        elif "lm_head" in name:
            t.normal_(0.0, 4.0 / hidden ** 0.5)
        else:
            t.normal_(0.0, 1.0 / p.shape[1] ** 0.5)
        t = t.to(getattr(torch, dtype))
        shard[name] = t
        size_now += t.numel() * t.element_size()
        n += t.numel()
        if size_now >= SHARD_BYTES:
            flush()
    flush()
    (tmp / "model.safetensors.index.json").write_text(json.dumps({"metadata": {"total_size": n * torch.tensor(
        [], dtype=getattr(torch, dtype)).element_size()},
                                                                  "weight_map": index}))
    cfg.architectures = ["LlamaForCausalLM"]
    cfg.save_pretrained(tmp)
    meta.generation_config.do_sample = False
    meta.generation_config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    cfg_path = tmp / "config.json"
    cfg_json = json.loads(cfg_path.read_text())
    cfg_json["dtype"] = dtype
    cfg_path.write_text(json.dumps(cfg_json, indent=2))
    (tmp / "build.json").write_text(json.dumps({"size": size, "params": n, "seed": seed, "dtype": dtype}))
    tmp.rename(out)
    return n


def _tree(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    kids.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measured(argv: list[str], env: dict, log: Path) -> dict:
    """Run ``argv``; wall, CPU of the whole tree, peak of the tree's summed RSS, largest process HWM."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        peak, hwm, stop = [0], {}, threading.Event()

        def sample():
            while not stop.is_set():
                total = 0
                for p in _tree(proc.pid):
                    total += _status_kb(p, "VmRSS:")
                    hwm[p] = max(hwm.get(p, 0), _status_kb(p, "VmHWM:"))
                peak[0] = max(peak[0], total)
                stop.wait(0.1)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        out, _ = proc.communicate()
        stop.set()
        th.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"returncode": proc.returncode, "wall_s": round(time.monotonic() - t0, 1),
            "cpu_s": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 1),
            "peak_rss_gb": round(peak[0] / 2**20, 3),
            "max_process_hwm_gb": round(max(hwm.values(), default=0) / 2**20, 3),
            "stdout": out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="200M", help=f"comma-separated sizes, of {sorted(SIZES)}")
    ap.add_argument("--weight-format", default="fp16", choices=("fp32", "fp16", "int8", "int4"))
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                    help="how the built checkpoints are stored (bfloat16: as most released models are)")
    ap.add_argument("--models-dir", default=str(Path.home() / ".cache" / "modelgate" / "bench"),
                    help="where the built checkpoints are cached")
    ap.add_argument("--no-raw-again", action="store_true", help="skip the second raw export")
    ap.add_argument("--timeout", default="3600", help="verify's --timeout per stage (seconds)")
    args = ap.parse_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    from modelgate.openvino.convert import _optimum_cli

    report = {"weight_format": args.weight_format, "checkpoint_dtype": args.dtype, "targets_at_800M": TARGETS,
              "sizes": {},
              "loadavg_start": os.getloadavg()[0]}
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        for size in args.params.split(","):
            if size not in SIZES:
                print(json.dumps({"error": f"unknown size {size!r}; one of {sorted(SIZES)}"}))
                return 2
            model = Path(args.models_dir) / (f"llama-{size}" + ("" if args.dtype == "float32" else f"-{args.dtype}"))
            if not (model / "build.json").is_file():
                build_llama(size, model, dtype=args.dtype)
            params = json.loads((model / "build.json").read_text())["params"]
            raw_argv = _optimum_cli() + ["export", "openvino", "--model", str(model), "--task",
                                         "text-generation-with-past", "--weight-format", args.weight_format]
            runs = {}
            plan = [("raw", raw_argv + [str(Path(tmp) / "raw")]),
                    ("verify", [sys.executable, "-m", "modelgate.cli", "verify", "--model", str(model),
                                "--weight-format", args.weight_format, "--timeout", args.timeout,
                                "--output", str(Path(tmp) / "verify")])]
            if not args.no_raw_again:
                plan.append(("raw_again", raw_argv + [str(Path(tmp) / "raw2")]))
            for name, cmd in plan:
                m = measured(cmd, env, Path(tmp) / f"{size}-{name}.log")
                out = m.pop("stdout")
                if name == "verify":
                    try:
                        v = json.loads(out)
                        m.update(decision=v.get("decision"), failure_class=v.get("failure_class"),
                                 detail=v.get("detail", "")[:300], timings=v.get("timings"),
                                 coverage=(v.get("coverage") or {}).get("summary"))
                    except ValueError:
                        m["stdout_tail"] = out[-500:]
                elif m["returncode"] != 0:
                    m["log_tail"] = (Path(tmp) / f"{size}-{name}.log").read_text()[-500:]
                runs[name] = m
                for folder in ("raw", "raw2", "verify"):
                    shutil.rmtree(Path(tmp) / folder, ignore_errors=True)
                print(f"{size} {name}: {m}", file=sys.stderr, flush=True)
            raw, ver = runs["raw"], runs["verify"]
            ratios = {"time_ratio": round(ver["wall_s"] / raw["wall_s"], 3),
                      "cpu_ratio": round(ver["cpu_s"] / raw["cpu_s"], 3) if raw["cpu_s"] else None,
                      "memory_ratio": round(ver["peak_rss_gb"] / raw["peak_rss_gb"], 3),
                      "max_process_hwm_ratio": round(ver["max_process_hwm_gb"] / raw["max_process_hwm_gb"], 3)}
            if "raw_again" in runs:
                ratios["raw_again_time_ratio"] = round(runs["raw_again"]["wall_s"] / raw["wall_s"], 3)
                ratios["raw_again_memory_ratio"] = round(runs["raw_again"]["peak_rss_gb"] / raw["peak_rss_gb"], 3)
            ratios["meets_targets"] = (ratios["time_ratio"] <= TARGETS["time_ratio"]
                                       and ratios["memory_ratio"] <= TARGETS["memory_ratio"])
            report["sizes"][size] = {"params": params, "runs": runs, "ratios": ratios}
    report["loadavg_end"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
