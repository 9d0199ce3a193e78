"""Similarities -> label scores -> routes for a list of cases, per backend.

Backends: ``embedding`` (MiniLM on OpenVINO, classifier router: the gate) and the comparison
routers run with ``--baselines``: ``embedding-exemplar`` (MiniLM, exemplar vote),
``embedding-description`` (MiniLM, description-only router) and ``lexical`` (TF-IDF,
description-only router).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from modelgate.routing import classifier, exemplar, lexical, metrics, router
from modelgate.routing.cases import Case

# Bump when tokenization or pooling changes: cached vectors would no longer be what encode gives.
EMBED_CACHE_VERSION = 1
EMBED_CACHE_DIR = "routing-embeddings"


def lexical_similarities(protos: Sequence[router.Prototype], queries: Sequence[str]) -> tuple[list[list[float]], dict]:
    """TF-IDF cosine similarities (queries x prototypes), and timings."""
    t0 = time.monotonic()
    sims = lexical.similarities([p.text for p in protos], queries)
    return sims, {"timings": {"total_s": time.monotonic() - t0}}


def score_cases(cases: Sequence[Case], protos: Sequence[router.Prototype],
                sims: Sequence[Sequence[float]]) -> list[dict]:
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


# --------------------------------------------------------------------------- embedding cache

def _cache_key(model, texts: Sequence[str]) -> str:
    blob = json.dumps({"version": EMBED_CACHE_VERSION, "model": model.ir_dir.name, "max_length": model.max_length,
                       "texts": list(texts)}, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def _load_cached(path: Path, n: int):
    """Cached vectors, or None when absent or unusable (wrong shape, non-finite): then re-encode."""
    import numpy as np

    if not path.is_file():
        return None
    try:
        vecs = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vecs.ndim != 2 or vecs.shape[0] != n or not np.isfinite(vecs).all():
        return None
    return vecs


def embed_texts(texts: Sequence[str]) -> tuple:
    """L2-normalised MiniLM vectors (numpy, len(texts) x 384) and info with timings.

    Vectors are cached next to the export cache (``<fixture cache>/routing-embeddings/<key>.npy``),
    keyed by a hash of the texts, the exported model's cache entry (which hashes the model files
    and tool versions) and the pooling version, so a warm run skips the OpenVINO child process.
    """
    import numpy as np

    from modelgate.buildcache import cache_root
    from modelgate.routing import embedding

    t0 = time.monotonic()
    model = embedding.prepare()
    t1 = time.monotonic()
    texts = list(texts)
    path = cache_root() / EMBED_CACHE_DIR / f"{_cache_key(model, texts)}.npy"
    vecs = _load_cached(path, len(texts))
    timings = {"export_s": t1 - t0}
    hit = vecs is not None
    if not hit:
        enc = embedding.encode(model, texts)
        vecs = np.asarray(enc["vectors"], dtype=np.float32)
        timings.update(encode_child_s=enc["child_s"], compile_s=enc["compile_s"], infer_s=enc["infer_s"])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".emb-", suffix=".npy", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, vecs, allow_pickle=False)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    timings["total_s"] = time.monotonic() - t0
    info = {"export_cold": model.export_cold, "ir_dir": model.ir_dir.name, "texts_encoded": int(vecs.shape[0]),
            "embedding_cache": "hit" if hit else "miss", "embedding_cache_key": path.stem}
    return vecs, {"timings": timings, **info}


def exemplar_similarities(q, e, center: bool) -> list[list[float]]:
    """Cosine similarities of query vectors ``q`` to exemplar vectors ``e`` (numpy, L2-normalised).

    With ``center``, both are first shifted by the mean exemplar vector and renormalised: the
    component every exemplar shares (the pack's common topic: models, OpenVINO, quantization) is
    removed, so what is left separates the labels. The mean is over exemplar texts only (train
    cases and description clauses; an unsupervised statistic, so a train case's own share of it,
    1/len(exemplars), is kept in leave-one-out).
    """
    import numpy as np

    if center:
        mu = e.mean(axis=0, keepdims=True)
        q, e = q - mu, e - mu
        q = q / np.clip(np.linalg.norm(q, axis=1, keepdims=True), 1e-12, None)
        e = e / np.clip(np.linalg.norm(e, axis=1, keepdims=True), 1e-12, None)
    return (q @ e.T).tolist()


def embedding_matrices(protos: Sequence[router.Prototype], exemplars: Sequence[exemplar.Exemplar],
                       queries: Sequence[str],
                       similarities: bool = True) -> tuple[list | None, dict | None, dict, dict]:
    """From one cached encode: queries x prototypes cosine similarities, queries x exemplars ones
    raw and centred ({False: ..., True: ...}), info, and the vectors (``{"queries", "exemplars"}``,
    numpy, rows in the order given) for the classifier router.

    Without ``similarities`` (a run of the gate router only) the prototypes are not encoded and
    both similarity results are None."""
    order: dict[str, int] = {}
    for t in ([p.text for p in protos] if similarities else []) + [e.text for e in exemplars] + list(queries):
        order.setdefault(t, len(order))
    vecs, info = embed_texts(list(order))
    q = vecs[[order[t] for t in queries]]
    e = vecs[[order[x.text] for x in exemplars]]
    if not similarities:
        return None, None, info, {"queries": q, "exemplars": e}
    desc = q @ vecs[[order[p.text] for p in protos]].T
    by_centering = {c: exemplar_similarities(q, e, c) for c in (False, True)}
    return desc.tolist(), by_centering, info, {"queries": q, "exemplars": e}


# --------------------------------------------------------------------------- exemplar router

def exemplar_votes(cases: Sequence[Case], exemplars: Sequence[exemplar.Exemplar], sims: Sequence[Sequence[float]],
                   k: int, temperature: float | None = None) -> list[dict]:
    """Per case its leave-one-out vote: a case never votes with itself or a case exemplar of the same text."""
    out = []
    for c, row in zip(cases, sims):
        allowed = exemplar.candidates(exemplars, exemplar.case_key(c.split, c.source, c.name), c.query)
        out.append(exemplar.vote(row, exemplars, k, allowed, temperature))
    return out


def calibrate_exemplar(train: Sequence[Case], exemplars: Sequence[exemplar.Exemplar],
                       sims_by_center: dict, ks: Sequence[int] = exemplar.DEFAULT_KS,
                       temperatures: Sequence[float | None] = exemplar.DEFAULT_TEMPERATURES) -> dict:
    """Leave-one-out calibration of (center, k, temperature, threshold, margin) on the train cases.

    ``sims_by_center`` maps center (False, True) to train-queries x exemplars similarities.
    """
    by_setting = {(center, k, t): [{"expected": c.expected, "should_trigger": c.should_trigger,
                                    "vote": exemplar.summary(v)}
                                   for c, v in zip(train, exemplar_votes(train, exemplars, sims, k, t))]
                  for center, sims in sims_by_center.items() for t in temperatures for k in ks}
    cal = exemplar.calibrate(by_setting)
    center, k, t = cal.pop("setting")
    return {"center": center, "k": k, "temperature": t, **cal}


def exemplar_routed(cases: Sequence[Case], exemplars: Sequence[exemplar.Exemplar], sims: Sequence[Sequence[float]],
                    params: dict) -> list[dict]:
    """Route every case with the exemplar router; scores are vote shares, top_score the winner's evidence."""
    out = []
    votes = exemplar_votes(cases, exemplars, sims, int(params["k"]), params.get("temperature"))
    for c, v, row in zip(cases, votes, sims):
        s = exemplar.summary(v)
        out.append(dict(asdict(c), scores=v["shares"], top_score=s["evidence"],
                        predicted=exemplar.decide(s, params["threshold"], params["margin"]),
                        neighbours=[{"label": exemplars[i].label, "origin": exemplars[i].origin,
                                     "similarity": round(float(row[i]), 4), "text": exemplars[i].text}
                                    for i in v["neighbours"][:3]]))
    return out


# --------------------------------------------------------------------------- classifier router

def classifier_examples(exemplars: Sequence[exemplar.Exemplar], train: Sequence[Case]) -> tuple:
    """Classifier training examples and their should_trigger flags, row for row with the exemplars
    (description clauses first, then one per train case, in ``train`` order: ``exemplar.build``),
    so the exemplar vectors are the examples' vectors."""
    clauses = [e for e in exemplars if e.origin == exemplar.DESCRIPTION]
    if len(clauses) + len(train) != len(exemplars):
        raise ValueError("exemplars do not match the train cases")
    exs = classifier.examples(clauses, train)
    flags = [None] * len(clauses) + [c.should_trigger for c in train]
    return exs, flags


def calibrate_classifier(train: Sequence[Case], exemplars: Sequence[exemplar.Exemplar], exemplar_vecs) -> dict:
    """Out-of-round calibration of (C, tfidf_weight, char_weight, rule, threshold, margin) on the train cases."""
    exs, flags = classifier_examples(exemplars, train)
    return classifier.calibrate(exemplar_vecs, exs, flags)


def classifier_routed(cases: Sequence[Case], train: Sequence[Case], exemplars: Sequence[exemplar.Exemplar],
                      exemplar_vecs, query_vecs, params: dict) -> tuple[list[dict], dict]:
    """Route every case with the classifier router, and info on what it was trained on.

    A train case is routed by the model fitted without its writing round (``classifier.cross_validated``),
    so train accuracy is out-of-round, not recall of a memorised example; every other case by the
    model fitted on all examples.
    """
    exs, _ = classifier_examples(exemplars, train)
    C, w = float(params["C"]), float(params["tfidf_weight"])
    cw, rule = float(params.get("char_weight", 0.0)), params.get("rule", classifier.TOP_LABEL)
    model = classifier.fit(exemplar_vecs, [e.text for e in exs], [e.label for e in exs], C, w, cw)
    n_clauses = len(exs) - len(train)
    oor = classifier.cross_validated(exemplar_vecs, exs, C, w, cw)[n_clauses:]
    by_key = {exemplar.case_key(c.split, c.source, c.name): p for c, p in zip(train, oor)}
    full = classifier.predict(model, query_vecs, [c.query for c in cases])
    out = []
    for c, p_full in zip(cases, full):
        p = by_key.get(exemplar.case_key(c.split, c.source, c.name)) if c.split == "train" else None
        p = p if p is not None else p_full
        s = classifier.summary(p, rule)
        out.append(dict(asdict(c), scores=p, top_score=s["evidence"],
                        predicted=classifier.decide(s, params["threshold"], params["margin"])))
    rounds = classifier.folds(exs)
    info = {"examples": {"description_clauses": n_clauses, "train_cases": len(train),
                         "by_label": {lb: sum(e.label == lb for e in exs) for lb in sorted({e.label for e in exs})},
                         "folds": sorted({f for f in rounds if f is not None})},
            "train_accuracy": "out-of-round"}
    return out, info
