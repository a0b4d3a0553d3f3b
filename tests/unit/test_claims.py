"""The claim splitter and the rule signals of claim grounding (no model)."""

from __future__ import annotations

from localrag.answer.claims import names, negated, numbers, signals, split_claims

BRIDGE = ("The Golden Gate Bridge opened to traffic in 1937 after four years of construction. "
          "It was designed by Joseph Strauss.")
MATCH = ("At WrestleMania 34, Asuka defended the SmackDown Women's Championship against Charlotte Flair. "
         "Charlotte Flair won the match and ended Asuka's streak. Shinsuke Nakamura lost to AJ Styles.")


def test_sentences_are_claims_with_their_markers() -> None:
    text = "The bridge opened in 1937 [1]. It was designed by Joseph Strauss. [2] Bees dance [1][3]."
    claims = split_claims(text)
    assert [c.text for c in claims] == ["The bridge opened in 1937.", "It was designed by Joseph Strauss.",
                                        "Bees dance."]
    assert [c.citations for c in claims] == [(1,), (2,), (1, 3)]
    for claim in claims:  # each span holds its claim and its own markers
        assert claim.text.rstrip(".") in text[claim.start:claim.end].replace(" [1]", "").replace(" [2]", "")
    assert text[claims[1].start:claims[1].end] == "It was designed by Joseph Strauss. [2]"


def test_a_sentence_joining_two_statements_is_two_claims() -> None:
    text = "The bridge opened to traffic in 1937 [1], and it was designed by Joseph Strauss [2]."
    first, second = split_claims(text)
    assert first.text == "The bridge opened to traffic in 1937" and first.citations == (1,)
    assert second.text == "it was designed by Joseph Strauss." and second.citations == (2,)
    assert text[first.start:first.end] == "The bridge opened to traffic in 1937 [1]"
    # too short to be a statement of its own: one claim, cited by the sentence's closing marker
    (whole,) = split_claims("Salt and pepper, and oil [1].")
    assert whole.citations == (1,)


def test_a_clause_without_markers_takes_those_closing_its_sentence() -> None:
    first, second = split_claims("Bees find flowers by smell; they tell others by dancing on the comb [2].")
    assert first.citations == (2,) and second.citations == (2,)


def test_markers_only_and_empty_text_are_no_claims() -> None:
    assert split_claims("") == [] and split_claims("[1] [2]") == []


def test_numbers_names_and_negation() -> None:
    assert numbers("In 1,500 cases, the 4th of two, in the 1990s (3.5%)") == {"1500", "4", "2", "1990", "3.5"}
    assert names("The winner of the match was Shinsuke Nakamura at WrestleMania 34.") == [
        "Shinsuke Nakamura", "WrestleMania 34"]
    assert negated("It did not open") and negated("It didn't open") and negated("It never opened")
    assert not negated("It opened in 1937.")


def test_a_true_claim_raises_no_signal() -> None:
    for claim in ("The Golden Gate Bridge opened in 1937.", "It was designed by Joseph Strauss.",
                  "Charlotte Flair won the match."):
        found = signals(claim, BRIDGE if "1937" in claim or "Strauss" in claim else MATCH)
        assert not found.contradicted and not found.unsupported, (claim, found)


def test_negation_mismatch_is_a_contradiction() -> None:
    found = signals("The Golden Gate Bridge did not open to traffic in 1937.", BRIDGE)
    assert found.negation and found.contradicted
    assert signals("The bridge opened in 1937.", "The bridge did not open in 1937; it opened in 1938.").negation


def test_a_changed_number_is_a_contradiction_and_an_absent_one_unsupported() -> None:
    changed = signals("The Golden Gate Bridge opened to traffic in 1936.", BRIDGE)
    assert changed.numbers_changed and changed.contradicted
    absent = signals("It was designed by Joseph Strauss in 1921.", BRIDGE)
    assert absent.numbers_absent == ("1921",) and absent.unsupported and not absent.contradicted


def test_names_absent_or_in_another_role() -> None:
    invented = signals("It was designed by Frank Lloyd Wright.", BRIDGE)
    assert invented.names_absent == ("Frank Lloyd Wright",) and invented.unsupported
    wrong_role = signals("Shinsuke Nakamura won the match and ended Asuka's streak.", MATCH)
    assert wrong_role.names_misplaced == ("Shinsuke Nakamura",) and wrong_role.contradicted
    assert "in another role" in " ".join(wrong_role.reasons())
    # part of a name the passage gives in full is not an invention
    assert not signals("Flair won the match.", MATCH).unsupported


def test_the_judge_reads_the_closest_sentence_and_its_neighbours() -> None:
    from localrag.answer.grounding import window

    passage = "One fish. Two birds sang at dawn. Three cats slept. Four dogs ran off."
    expected = "Two birds sang at dawn. Three cats slept. Four dogs ran off."
    assert window(passage, "Three cats were sleeping.") == expected
    assert window(passage, "one fish") == "One fish. Two birds sang at dawn."
    assert window("", "anything") == ""
