"""G4 oracles as pure functions: earlier oracles' false positives and silent skips must not recur."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelgate.gates import oracles as O


@pytest.mark.parametrize("text", ["information", "infinite", "to infinity and beyond", "The answer is 4.",
                                  "Mississippi banana", " blue . ", "one two three four five", "1000000",
                                  "The quick brown fox jumps over the lazy dog."])
def test_normal_words_and_prose_are_not_degenerate(text):
    assert O.degenerate_output(text)["pass"], O.degenerate_output(text)["reason"]


@pytest.mark.parametrize("text", ["HHHHHHHH", "RRRRRRRRRRRRRRRRRRRRRRR", "abcabcabcabcabc", "the the the the the",
                                  "ok\x01", "a\ufffdb", "", "   \n", "NaN", "nan inf -inf",
                                  "The answer is 4. 4. 4. 4. 4. 4."])
def test_degenerate_outputs_are_caught(text):
    assert not O.degenerate_output(text)["pass"]


def test_non_text_output_is_degenerate_not_an_error():
    assert not O.degenerate_output(None)["pass"]


def test_degenerate_thresholds_come_from_the_playbook():
    assert O.degenerate_output("aaaaa")["pass"]
    assert not O.degenerate_output("aaaaa", {"max_char_run": 5})["pass"]


@pytest.mark.parametrize("answer", ["4", "four", "The answer is 4", "2+2=4", "2 + 2 is 4.", "Four!"])
def test_what_is_2_plus_2_is_parsed_and_correct_answers_pass(answer):
    assert O.arithmetic_answer("What is 2+2?", answer)["pass"]


@pytest.mark.parametrize("answer", ["5", "five", "The answer is 22", "2 + 2 is 5", "I do not know", ""])
def test_wrong_or_missing_arithmetic_answers_fail(answer):
    assert not O.arithmetic_answer("What is 2+2?", answer)["pass"]


@pytest.mark.parametrize("question,answer", [("what is 3 plus 5", "8"), ("Compute 6 x 7", "42.0"),
                                             ("12 divided by 4 =", "3"), ("What is 10 minus 3?", "seven"),
                                             ("What is 7 times 6?", "42")])
def test_usual_phrasings_of_arithmetic_are_parsed(question, answer):
    assert O.arithmetic_answer(question, answer)["pass"]


def test_question_without_arithmetic_raises_instead_of_skipping():
    with pytest.raises(ValueError):
        O.parse_arithmetic("What is the capital of France?")


def test_exact_answer_reads_the_first_word_case_insensitively():
    assert O.exact_answer(" Blue . ", "blue")["pass"]
    assert not O.exact_answer(" green . ", "blue")["pass"]
    assert not O.exact_answer("", "blue")["pass"]


def test_reference_agreement_empty_vs_empty_is_a_failure_not_a_vacuous_pass():
    assert not O.reference_agreement([{"tokens": [], "reference": []}], 0.5)["pass"]
    assert not O.reference_agreement([], 0.5)["pass"]


def test_reference_agreement_uses_the_per_format_tolerance():
    pairs = [{"tokens": [1, 2, 9, 9], "reference": [1, 2, 3, 4]}]
    assert O.reference_agreement(pairs, 0.5)["pass"]
    assert not O.reference_agreement(pairs, 0.75)["pass"]
    assert O.reference_agreement([{"tokens": [1, 2], "reference": [1, 2]}], 1.0)["pass"]


def test_reference_agreement_rejects_a_nonsense_threshold():
    with pytest.raises(ValueError):
        O.reference_agreement([{"tokens": [1], "reference": [1]}], float("nan"))


@given(st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=3),
       st.integers(min_value=4, max_value=30))
def test_any_unit_repeated_many_times_is_degenerate(unit, reps):
    assert not O.degenerate_output(unit * reps)["pass"] or len(unit * reps) < 9


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_arithmetic_sum_is_checked_for_any_operands(a, b):
    q = f"What is {a} + {b}?" if b >= 0 else f"What is {a} plus {b}?"
    assert O.arithmetic_answer(q, f"The answer is {a + b}")["pass"]


# --- number words up to the thousands; runs of digits or symbols judged by the expected kind (issue 14)

@pytest.mark.parametrize("question,answer", [
    ("What is 7 times 6?", "forty-two"), ("What is 7 times 6?", "The answer is Forty two."),
    ("What is 600 times 2?", "one thousand two hundred"), ("What is 600 times 2?", "twelve hundred"),
    ("What is 600 times 2?", "1,200"), ("What is 1000 plus 234?", "one thousand two hundred and thirty-four"),
    ("What is forty-two plus one?", "43"), ("What is one thousand minus one?", "nine hundred ninety-nine"),
    ("What is 10-3?", "seven"), ("What is 1000 times 1000?", "one million")])
def test_number_words_up_to_the_thousands_are_read(question, answer):
    r = O.arithmetic_answer(question, answer)
    assert r["pass"], r["reason"]


@pytest.mark.parametrize("answer", ["forty-three", "four two", "four hundred two", "twelve"])
def test_wrong_or_malformed_number_words_fail(answer):
    assert not O.arithmetic_answer("What is 7 times 6?", answer)["pass"]


@pytest.mark.parametrize("phrase,value", [("forty-two", 42), ("one thousand two hundred", 1200),
                                          ("twelve hundred", 1200), ("two hundred and five", 205),
                                          ("one thousand and one", 1001), ("zero", 0),
                                          ("four two", None), ("hundred", None), ("thousand thousand", None)])
def test_words_number_reads_whole_phrases_only(phrase, value):
    assert O.words_number(phrase) == value


@given(st.integers(0, 999_999))
def test_every_number_below_a_million_written_in_words_is_read_back(n):
    def say(k):
        ones = list(O.SMALL_NUMBERS)
        tens = {v: w for w, v in O.TENS.items()}
        if k < 20:
            return ones[k]
        if k < 100:
            return tens[k - k % 10] + ("-" + ones[k % 10] if k % 10 else "")
        return ones[k // 100] + " hundred" + (" and " + say(k % 100) if k % 100 else "")
    words = (say(n // 1000) + " thousand" + (" " + say(n % 1000) if n % 1000 else "")) if n >= 1000 else say(n)
    assert O.words_number(words) == n, words


def test_a_long_number_answers_a_numeric_question_and_a_symbol_run_a_symbolic_one():
    assert O.degenerate_output("1000000000000", expected="number")["pass"]
    assert O.arithmetic_answer("What is 1000000 times 1000000?", "1000000000000")["pass"]
    assert O.degenerate_output("----------", expected="symbols")["pass"]
    assert O.degenerate_output("Title\n----------")["pass"]  # a separator beside words is content
    assert O.degenerate_output("The total is 1000000000000")["pass"]


@pytest.mark.parametrize("text,kind", [("!!!!!!!!!!!!", "text"), ("!!!!!!!!!!!!", "number"),
                                       ("----------", "text"), ("0000000000000", "text"),
                                       ("HHHHHHHH", "number"), ("HHHHHHHH", "symbols"),
                                       ("The answer is 4. 4. 4. 4. 4. 4.", "number")])
def test_runs_the_expected_kind_does_not_explain_stay_degenerate(text, kind):
    assert not O.degenerate_output(text, expected=kind)["pass"]


@pytest.mark.parametrize("answer,kind", [("42", "number"), ("forty-two", "number"), ("1,200", "number"),
                                         ("----", "symbols"), ("blue", "text"), ("R2-D2", "text")])
def test_the_kind_of_a_known_answer(answer, kind):
    assert O.answer_kind(answer) == kind
