"""TF-IDF lexical baseline."""
from modelgate.routing import lexical


def test_query_is_most_similar_to_the_prototype_sharing_its_words():
    sims = lexical.similarities(["convert a model to openvino", "certify a model with a playbook"],
                                ["please certify gpt2 with the playbook"])
    assert sims[0][1] > sims[0][0]


def test_query_without_shared_words_scores_zero():
    sims = lexical.similarities(["convert a model", "certify a model"], ["bake sourdough bread"])
    assert sims == [[0.0, 0.0]]


def test_similarities_are_cosines_in_zero_one():
    sims = lexical.similarities(["alpha beta", "beta gamma"], ["alpha beta", "gamma"])
    assert abs(sims[0][0] - 1.0) < 1e-9
    assert all(0.0 <= s <= 1.0 + 1e-9 for row in sims for s in row)
