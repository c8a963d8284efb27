"""Reading a model's final answer out of its response: pure functions shared by the benchmark tasks.

Qwen3 and its kind reason inside `<think>…</think>` before answering; an answer written while thinking is a
draft, never the answer, so every reader here starts from `final_part`. After that, benchmarks ask for the
answer in different wrappers: a `\\boxed{}` (SSMR-Bench, WildSci), a tag such as `<answer>…</answer>`
(PaperSearchQA, Search-R1), or a JSON object, often in a ```json fence (ChemCoTBench). When a response holds
several, the last one counts: models restate and correct themselves, and a prompt's own example comes first.

Every reader here takes any text, never raises, and runs in time linear in its length: rewards are computed on
rollouts, and a policy in a repetition loop writes thousands of unbalanced `\\boxed{` or `{` in one response.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

__all__ = ["choice_letter", "final_part", "json_answer", "last_boxed", "last_tag", "matching_braces", "strip_fences"]

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
MAX_JSON_DEPTH = 32  # an answer object is shallow; deeper spans are skipped (json recurses once per level)
_FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n?(.*?)```", re.DOTALL)
_TEXT_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mathbf)\{(.*)\}$", re.DOTALL)


def final_part(response: str) -> str:
    """The response after its reasoning: the text after the last `</think>`. A response that opens `<think>` and
    never closes it was cut off while thinking, so it has no final part (""); one without think tags is all final."""
    if _THINK_CLOSE in response:
        return response.rsplit(_THINK_CLOSE, 1)[1]
    if _THINK_OPEN in response:
        return ""
    return response


def strip_fences(text: str) -> str:
    """The body of the last ``` fenced block (any language tag), or the text itself when there is none."""
    blocks = _FENCE.findall(text)
    return blocks[-1].strip() if blocks else text.strip()


def matching_braces(text: str) -> dict[int, int]:
    """For every `{` that is closed, the index of its `}`: one pass with a stack, so linear in the text."""
    pairs, stack = {}, []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{…}` (or `\\fbox{…}`), braces balanced, a `\\text{…}` wrapper removed;
    None when there is no complete one."""
    starts = [m.end() - 1 for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    if not starts:
        return None
    pairs = matching_braces(text)
    closed = [b for b in starts if b in pairs]
    if not closed:
        return None
    found = text[closed[-1] + 1:pairs[closed[-1]]].strip()
    for _ in range(3):  # \\text{\\textbf{B}} at most; a deeper nest is not an answer anyone writes
        inner = _TEXT_WRAPPER.match(found)
        if inner is None:
            break
        found = inner.group(1).strip()
    return found


def last_tag(text: str, tag: str) -> str | None:
    """The content of the last complete `<tag>…</tag>` (the last opening before the last closing), stripped; None
    when there is none."""
    closes = [m.start() for m in re.finditer(rf"</{re.escape(tag)}>", text, flags=re.IGNORECASE)]
    if not closes:
        return None
    opens = [m.end() for m in re.finditer(rf"<{re.escape(tag)}>", text[:closes[-1]], flags=re.IGNORECASE)]
    return text[opens[-1]:closes[-1]].strip() if opens else None


def _json_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, depth) of every balanced `{…}` in the text, `"`-quoted strings skipped as JSON reads them (an
    unclosed quote is taken literally); one pass, so linear in the text."""
    spans, stack = [], []  # stack entries: [start, depth of the deepest span inside + 1]
    i, n, unclosed = 0, len(text), False  # after one quote finds no closing one, no later quote can
    while i < n:
        ch = text[i]
        if ch == '"' and stack and not unclosed:
            j = i + 1
            while (j := text.find('"', j)) != -1 and _escaped(text, j):
                j += 1
            if j != -1:
                i = j + 1
                continue
            unclosed = True
        elif ch == "{":
            stack.append([i, 1])
        elif ch == "}" and stack:
            start, depth = stack.pop()
            spans.append((start, i, depth))
            if stack:
                stack[-1][1] = max(stack[-1][1], depth + 1)
        i += 1
    return sorted(spans)


def _escaped(text: str, j: int) -> bool:
    """Whether the character at j is escaped by an odd run of backslashes before it."""
    k = j - 1
    while k >= 0 and text[k] == "\\":
        k -= 1
    return (j - 1 - k) % 2 == 1


def _json_objects(text: str) -> list[Any]:
    """Every JSON object that parses from a balanced `{…}` of the text, outermost first in reading order; spans
    nested deeper than MAX_JSON_DEPTH are not tried, so each character is parsed a bounded number of times."""
    found, covered = [], -1
    for start, end, depth in _json_spans(text):
        if start <= covered or depth > MAX_JSON_DEPTH:
            continue
        try:
            obj = json.loads(text[start:end + 1])
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict):
            found.append(obj)
            covered = end
    return found


def json_answer(text: str, keys: Iterable[str]) -> Any | None:
    """The value under the first of `keys` (case-insensitive) in the last JSON object of the text that has one,
    fences stripped; None when no object names any of them."""
    wanted = [k.lower() for k in keys]
    for obj in reversed(_json_objects(strip_fences(text)) or _json_objects(text)):
        lowered = {str(k).lower(): v for k, v in obj.items()}
        for key in wanted:
            if key in lowered:
                return lowered[key]
    return None


# "The answer is a combination of…": an article, not option A. A lower-case letter counts only in parentheses, and a
# capital A or I followed by a lower-case word only when that word links to a reason.
_STATED = re.compile(r"answer\s*(?:is|:)\s*(?:\(([A-Za-z])\)|([A-Z])(?![A-Za-z'’]))(\s+[a-z]+)?", re.IGNORECASE)
_LINKS = {"because", "since", "as", "and", "which", "with", "given", "due", "from", "per", "so", "for"}


def _stated_letter(final: str) -> str | None:
    for match in reversed(list(_STATED.finditer(final))):
        paren, bare, word = match.groups()
        if paren:
            return paren
        if not bare.isupper():
            continue  # re.IGNORECASE let a lower-case letter through: "the answer is a …"
        if word and bare in "AI" and word.strip() not in _LINKS:
            continue
        return bare
    return None


def choice_letter(text: str, letters: str = "ABCD", ignore: Iterable[str] = ()) -> str | None:
    """A multiple-choice letter from the final part of a response: the last `\\boxed{}` if any, else the last
    `<answer>` tag, else the last "answer is X" / "Answer: X"; only a letter among `letters` (any case) counts,
    alone or followed by `)`, `.` or `:` and the option's text. Each text of `ignore` (the instruction and its
    example answer) is removed first, so a response that echoes the prompt's `e.g. \\boxed{A}` has not answered A."""
    final = final_part(text)
    for echoed in ignore:
        if echoed:
            final = final.replace(echoed, " ")
    pattern = re.compile(rf"^\(?([{re.escape(letters)}])\)?(?:[).:\s]|$)", re.IGNORECASE)
    candidates = [last_boxed(final), last_tag(final, "answer"), _stated_letter(final)]
    for candidate in candidates:
        if candidate is None:
            continue
        match = pattern.match(candidate.strip())
        if match:
            return match.group(1).upper()
        return None  # the answer was given in this wrapper, and it is not a letter: a wrong answer, not a missing one
    return None
