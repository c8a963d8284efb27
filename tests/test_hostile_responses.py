"""Every task's reward on responses a policy writes when it goes wrong: generated from pieces that break parsers
(unbalanced braces and `\\boxed{`, deep nesting, stray quotes and backslashes, think tags, fences, unicode, the
prompt echoed back), at growing lengths. A reward must return a number in [0, 1], never raise, and take time
linear in the response's length (a quadratic reader takes minutes at these sizes, so the bound below is loose)."""

import random
import time
from pathlib import Path

import pytest

from llmzero.tasks.answers import choice_letter, json_answer, last_boxed, last_tag
from llmzero.tasks.arithmetic import ArithmeticTask
from llmzero.tasks.chemcot import ChemCoTTask
from llmzero.tasks.papersearchqa import PaperSearchQATask
from llmzero.tasks.ssmr import SSMRTask
from llmzero.tasks.wildsci import WildSciTask

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
PIECES = ["{", "}", "[", "]", "\\boxed{", "\\boxed{A}", "\\fbox{", "\\text{", '"', '\\"', "\\", "<think>", "</think>",
          "<answer>", "</answer>", "```json\n", "```", '{"output": ', '{"count": 3}', "The answer is ", "Answer: ",
          "a combination", " C1=CC=CC=C1 ", "[Na+].[Cl-]", "é", "漢字", "\u200b", "\x00", "🙂", "\n", "    ", "1e309",
          "NaN", "-", "(", ")"]


def tasks():
    return {
        "arithmetic": ArithmeticTask(train_size=8, val_size=4, test_size=4),
        "chemcot": ChemCoTTask(data_files=str(FIXTURES / "chemcot.jsonl"), seed=0),
        "ssmr": SSMRTask(data_files=str(FIXTURES / "ssmr.jsonl"), seed=0),
        "wildsci": WildSciTask(data_files=str(FIXTURES / "wildsci.jsonl"), seed=0),
        "papersearchqa": PaperSearchQATask(data_files=str(FIXTURES / "papersearchqa.jsonl"), seed=0,
                                           retriever={"corpus": str(FIXTURES / "pubmed_corpus.jsonl")}),
    }


def hostile(rng: random.Random, length: int, prompt: str) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # one piece repeated: a repetition loop
        piece = rng.choice(PIECES)
        return piece * max(1, length // len(piece))
    if kind == 1:  # nesting as deep as the length allows
        half = length // 2
        return "[" * (half // 2) + '{"a":' * (half // 10) + "1" + "}" * (half // 10) + "]" * (half // 2)
    if kind == 2:  # the prompt echoed back, over and over
        return (prompt + "\n") * max(1, length // max(1, len(prompt)))
    out, size = [], 0
    while size < length:
        piece = rng.choice(PIECES)
        out.append(piece)
        size += len(piece)
    return "".join(out)


@pytest.mark.parametrize("name", ["arithmetic", "chemcot", "ssmr", "wildsci", "papersearchqa"])
def test_a_reward_takes_any_response_without_raising_in_linear_time(name):
    task = tasks()[name]
    examples = [e for split in task.splits().values() for e in split][:6]
    rng = random.Random(name)
    for length in (0, 1, 100, 5_000, 60_000):
        for _ in range(8 if length <= 5_000 else 3):
            example = rng.choice(examples)
            response = hostile(rng, length, example.prompt)
            started = time.perf_counter()
            value = task.reward(response, example)
            elapsed = time.perf_counter() - started
            assert isinstance(value, float) and 0.0 <= value <= 1.0, (name, response[:80], value)
            assert elapsed < 3.0, f"{name}: {elapsed:.1f} s on a {len(response)}-character response {response[:60]!r}"


def test_the_readers_stay_linear_on_the_worst_repetitions():
    # Each of these was quadratic or recursive before: seconds to minutes at this size, or a RecursionError.
    n = 100_000
    for text in ("\\boxed{" * n, "[" * n + "{" * n, '{"a":' * n + "1" + "}" * n, "<answer>" * n, '{' + '\\"' * n,
                 "\\boxed{" + "\\text{" * n + "B" + "}" * (n + 1), "{" * n + "}" * n):
        started = time.perf_counter()
        json_answer(text, ["a", "output"]), last_boxed(text), last_tag(text, "answer"), choice_letter(text)
        assert time.perf_counter() - started < 3.0, text[:40]


def test_answers_the_old_readers_got_wrong():
    deep = json_answer('{"output": ' * 5000 + '"x"' + "}" * 5000, ["output"])  # was a RecursionError
    assert isinstance(deep, dict)  # only the innermost 32 levels are read: an object, not the string "x"
    assert json_answer('noise {{{ {"output": "CCO"} and { unclosed', ["output"]) == "CCO"
    assert json_answer('{"note": "a } inside a string", "output": "C"}', ["output"]) == "C"
    assert last_boxed("\\boxed{" * 50 + "\\boxed{B}") == "B"
    assert last_tag("<answer>a</answer> <answer>b", "answer") == "a"
    assert choice_letter("The answer is a combination of both effects.") is None
    assert choice_letter("I think the answer is A because the ring strain dominates.") == "A"
    assert choice_letter("So the answer is B, which matches the score.") == "B"
    assert choice_letter("The answer is (c).") == "C"
    echo = "give the letter of the correct option inside \\boxed{}, e.g. \\boxed{A}."
    assert choice_letter(echo, ignore=(echo, "e.g. \\boxed{A}")) is None  # an echo of the instruction chose nothing
    assert choice_letter(echo + " My answer: \\boxed{D}", ignore=(echo, "e.g. \\boxed{A}")) == "D"


@pytest.mark.parametrize("name", ["ssmr", "wildsci"])
def test_echoing_the_instruction_scores_nothing(name):
    task = tasks()[name]
    for example in [e for split in task.splits().values() for e in split]:
        assert task.reward(example.prompt, example) == 0.0
        assert task.reward(example.prompt + "\n\\boxed{" + example.answer + "}", example) == 1.0
