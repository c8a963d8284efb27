"""Answer extraction for the benchmark tasks (llmzero/tasks/answers.py): thinking never counts, the last answer does."""

import pytest

from llmzero.tasks.answers import choice_letter, final_part, json_answer, last_boxed, last_tag, strip_fences


def test_only_the_text_after_the_last_closing_think_tag_is_the_answer():
    assert final_part("<think>maybe \\boxed{B}</think>So \\boxed{C}") == "So \\boxed{C}"
    assert final_part("<think>a</think> draft <think>b</think> final") == " final"
    assert final_part("<think>cut off while thinking \\boxed{A}") == ""  # never closed: no answer at all
    assert final_part("no thinking, just \\boxed{D}") == "no thinking, just \\boxed{D}"


def test_a_boxed_answer_inside_thinking_is_ignored_for_the_final_one():
    response = "<think>First guess \\boxed{A}. Wait, recheck.</think>\nThe answer is \\boxed{C}."
    assert choice_letter(response) == "C"
    assert choice_letter("<think>surely \\boxed{A}</think>") is None  # thinking only: no final answer


def test_the_last_boxed_answer_with_balanced_braces_and_text_wrappers():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{\\text{B}}") == "B"
    assert last_boxed("\\fbox{ 42 }") == "42"
    assert last_boxed("\\boxed{unclosed") is None
    assert last_boxed("nothing here") is None


def test_the_last_tag_counts_not_the_prompts_example():
    prompt_echo = "For example <answer>Beijing</answer>. Let me search. <answer>aspirin</answer>"
    assert last_tag(prompt_echo, "answer") == "aspirin"
    assert last_tag("<ANSWER> x </ANSWER>", "answer") == "x"
    assert last_tag("<answer>never closed", "answer") is None


def test_fences_are_stripped_to_the_last_block():
    text = "Here:\n```json\n{\"count\": 2}\n```\nand finally\n```json\n{\"count\": 3}\n```"
    assert strip_fences(text) == '{"count": 3}'
    assert strip_fences("```\nplain\n```") == "plain"
    assert strip_fences("  bare  ") == "bare"


def test_json_answers_by_key_from_fenced_or_bare_objects():
    fenced = "I think...\n```json\n{\"Output Scaffold\": \"c1ccccc1\"}\n```"
    assert json_answer(fenced, ["output scaffold"]) == "c1ccccc1"
    bare = 'reasoning {"note": 1} then {"count": 4, "extra": {"a": 1}}'
    assert json_answer(bare, ["count"]) == 4
    assert json_answer('{"Major Product": "CCO"}', ["output", "major product"]) == "CCO"
    assert json_answer("{not json}", ["count"]) is None
    assert json_answer('{"other": 1}', ["count"]) is None


@pytest.mark.parametrize("response, letters, expected", [
    ("\\boxed{J}", "ABCDEFGHIJ", "J"),  # WildSci's options run to J
    ("\\boxed{J}", "ABCD", None),  # past the allowed letters
    ("\\boxed{(b) the second}", "ABCD", "B"),
    ("<answer>E</answer>", "ABCDE", "E"),  # a mechsel letter past D
    ("After all that, the answer is (C).", "ABCD", "C"),
    ("Answer: D", "ABCD", "D"),
    ("\\boxed{42}", "ABCD", None),  # boxed but not a letter: wrong, and no later phrase rescues it
    ("I cannot decide.", "ABCD", None),
])
def test_choice_letters(response, letters, expected):
    assert choice_letter(response, letters) == expected
