"""Similarities -> label scores -> routes for a list of cases, per backend (embedding or lexical)."""
from __future__ import annotations

import time
from dataclasses import asdict
from typing import Sequence

from modelgate.routing import lexical, metrics, router
from modelgate.routing.cases import Case


def embedding_similarities(protos: Sequence[router.Prototype], queries: Sequence[str]) -> tuple[list[list[float]], dict]:
    """Cosine similarities (queries x prototypes) from MiniLM through OpenVINO, and timings."""
    import numpy as np

    from modelgate.routing import embedding

    t0 = time.monotonic()
    model = embedding.prepare()
    t1 = time.monotonic()
    enc = embedding.encode(model, [p.text for p in protos] + list(queries))
    vecs = np.asarray(enc["vectors"], dtype=np.float32)
    sims = vecs[len(protos):] @ vecs[:len(protos)].T
    timings = {"export_s": t1 - t0, "encode_child_s": enc["child_s"], "compile_s": enc["compile_s"],
               "infer_s": enc["infer_s"], "total_s": time.monotonic() - t0}
    info = {"export_cold": model.export_cold, "ir_dir": str(model.ir_dir), "texts_encoded": int(vecs.shape[0])}
    return sims.tolist(), {"timings": timings, **info}


def lexical_similarities(protos: Sequence[router.Prototype], queries: Sequence[str]) -> tuple[list[list[float]], dict]:
    """TF-IDF cosine similarities (queries x prototypes), and timings."""
    t0 = time.monotonic()
    sims = lexical.similarities([p.text for p in protos], queries)
    return sims, {"timings": {"total_s": time.monotonic() - t0}}


BACKENDS = {"embedding": embedding_similarities, "lexical": lexical_similarities}


def score_cases(cases: Sequence[Case], protos: Sequence[router.Prototype], sims: Sequence[Sequence[float]]) -> list[dict]:
    """Per case: its fields plus the per-label scores."""
    return [dict(asdict(c), scores=router.label_scores(row, protos)) for c, row in zip(cases, sims)]


def routed(scored: Sequence[dict], threshold: float, margin: float) -> list[dict]:
    """Add ``predicted`` (and the top score) to scored cases."""
    out = []
    for c in scored:
        r = dict(c, predicted=router.route(c["scores"], threshold, margin))
        r["top_score"] = max(c["scores"].values())
        out.append(r)
    return out


def by_split(results: Sequence[dict], skills: Sequence[str]) -> dict:
    """metrics.score for each split present, plus 'all'."""
    splits = sorted({r["split"] for r in results})
    out = {s: metrics.score([r for r in results if r["split"] == s], skills) for s in splits}
    out["all"] = metrics.score(results, skills)
    return out
