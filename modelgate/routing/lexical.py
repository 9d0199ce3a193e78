"""Lexical baseline: TF-IDF cosine between a query and each prototype (scikit-learn).

Same router, same prototypes as the embedding backend; only the similarity differs. It shows
how much of the routing the sentence embedding earns over word overlap.
"""
from __future__ import annotations

from collections.abc import Sequence


def similarities(prototype_texts: Sequence[str], queries: Sequence[str]) -> list[list[float]]:
    """queries x prototypes cosine similarities of (1,2)-gram sublinear TF-IDF fitted on the prototypes."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True,
                          token_pattern=r"(?u)\b[\w][\w.-]*\b")
    protos = vec.fit_transform(list(prototype_texts))
    q = vec.transform(list(queries))
    return (q @ protos.T).toarray().tolist()
