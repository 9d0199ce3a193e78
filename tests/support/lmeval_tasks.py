"""Offline lm-evaluation-harness tasks (YAML + JSONL written at run time) that fit the trained fixture LLM.

- ``cf_mc``  : multiple choice by log-likelihood (acc): the color of an object among the palette, and
  which number word comes next;
- ``cf_gen`` : ``generate_until`` exact match on the first generated word;
- ``cf_ppl`` : rolling log-likelihood (bits_per_byte) of the fixture's training lines.

``dataset_path: json`` + ``dataset_kwargs.data_files`` make ``datasets`` read the local JSONL with its
packaged json builder: nothing is downloaded. ``write_unreachable_task`` names a hub dataset that is
neither cached nor reachable.
"""
from __future__ import annotations

import json
from pathlib import Path

from modelgate import data

TASKS = ("cf_mc", "cf_gen", "cf_ppl")


def _facts() -> list[tuple[str, str]]:
    return [(p.removeprefix("the color of ").removesuffix(" is"), a) for p, a in data.color_facts()]


def mc_docs() -> list[dict]:
    facts = _facts()
    palette = sorted({c for _, c in facts})
    words = list(data.NUMBER_WORDS)
    docs = [{"id": f"color-{i}", "question": f"the color of {o} is", "choices": palette, "answer": palette.index(c)}
            for i, (o, c) in enumerate(facts)]
    docs += [{"id": f"count-{s}-{n}", "question": " ".join(words[s:s + n]), "choices": words, "answer": s + n}
             for s in range(6) for n in range(2, 5)]
    return docs


def gen_docs() -> list[dict]:
    words = list(data.NUMBER_WORDS)
    docs = [{"id": f"color-{i}", "prompt": f"the color of {o} is", "answer": c} for i, (o, c) in enumerate(_facts())]
    docs += [{"id": f"count-{s}-{n}", "prompt": " ".join(words[s:s + n]), "answer": words[s + n]}
             for s in range(6) for n in range(2, 5)]
    return docs


def ppl_docs() -> list[dict]:
    return [{"id": f"line-{i}", "text": t} for i, t in enumerate(data.trained_lm_corpus())]


HEAD = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
num_fewshot: 0
metadata:
  version: 1.0
"""
BODIES = {
    "cf_mc": """output_type: multiple_choice
doc_to_text: "{{question}}"
doc_to_choice: "{{choices}}"
doc_to_target: answer
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
""",
    "cf_gen": """output_type: generate_until
doc_to_text: "{{prompt}}"
doc_to_target: "{{answer}}"
target_delimiter: " "
generation_kwargs:
  until: ["\\n", "."]
  max_gen_toks: 8
  do_sample: false
filter_list:
  - name: first_word
    filter:
      - function: regex
        regex_pattern: "([A-Za-z]+)"
        group_select: 0
        fallback: "[no answer]"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: true
""",
    "cf_ppl": """output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{text}}"
metric_list:
  - metric: word_perplexity
  - metric: bits_per_byte
""",
}
DOCS = {"cf_mc": mc_docs, "cf_gen": gen_docs, "cf_ppl": ppl_docs}


def write_tasks(root: Path) -> Path:
    """Write cf_mc, cf_gen and cf_ppl (YAML + JSONL) into ``root``; returns ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for task in TASKS:
        jsonl = root / f"{task}.jsonl"
        jsonl.write_text("".join(json.dumps(d, sort_keys=True) + "\n" for d in DOCS[task]()), encoding="utf-8")
        (root / f"{task}.yaml").write_text(HEAD.format(task=task, data=json.dumps(str(jsonl))) + BODIES[task],
                                          encoding="utf-8")
    return root


def write_unreachable_task(root: Path, name: str = "cf_unreachable") -> Path:
    """A task over a hub dataset that is neither cached nor reachable."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: modelgate-nonexistent/definitely-not-cached\ntest_split: test\n"
        "num_fewshot: 0\nmetadata:\n  version: 1.0\n" + BODIES["cf_mc"], encoding="utf-8")
    return root
