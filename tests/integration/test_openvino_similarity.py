"""Answer similarity's embeddings: the fast path (tokenizer file + OpenVINO) equals the pack's reference
MiniLM encoder (modelgate.routing.embedding, transformers tokenizer) vector for vector."""
import numpy as np
import pytest

from modelgate.openvino import similarity
from modelgate.routing import embedding

pytestmark = pytest.mark.integration


def test_answer_embeddings_match_the_packs_reference_encoder():
    texts = ["The capital of Italy is Rome.", "four", "A much longer answer about rivers, mountains and the "
             "weather in spring, with punctuation; and numbers: 3, 4.", "x"]
    fast = np.asarray(similarity.embed(texts, timeout=300))
    ref = np.asarray(embedding.encode(embedding.prepare(), texts)["vectors"])
    assert fast.shape == ref.shape == (4, 384)
    assert np.abs(fast - ref).max() < 1e-5
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
