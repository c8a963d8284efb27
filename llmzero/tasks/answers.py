"""Reading a model's final answer out of its response: pure functions shared by the benchmark tasks.

Qwen3 and its kind reason inside `<think>…</think>` before answering; an answer written while thinking is a
draft, never the answer, so every reader here starts from `final_part`. After that, benchmarks ask for the
answer in different wrappers: a `\\boxed{}` (SSMR-Bench, WildSci), a tag such as `<answer>…</answer>`
(PaperSearchQA, Search-R1), or a JSON object, often in a ```json fence (ChemCoTBench). When a response holds
several, the last one counts: models restate and correct themselves, and a prompt's own example comes first.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

__all__ = ["choice_letter", "final_part", "json_answer", "last_boxed", "last_tag", "strip_fences"]

_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
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


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{…}` (or `\\fbox{…}`), braces balanced, a `\\text{…}` wrapper removed;
    None when there is no complete one."""
    found = None
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    found = text[start:i]
                    break
    if found is None:
        return None
    found = found.strip()
    while (inner := _TEXT_WRAPPER.match(found)) is not None:
        found = inner.group(1).strip()
    return found


def last_tag(text: str, tag: str) -> str | None:
    """The content of the last complete `<tag>…</tag>`, stripped; None when there is none."""
    matches = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", text, flags=re.DOTALL | re.IGNORECASE)
    return matches[-1].strip() if matches else None


def _json_objects(text: str) -> list[Any]:
    """Every JSON object that parses from a `{` in the text, outermost first in reading order."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        i = end
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


def choice_letter(text: str, letters: str = "ABCD") -> str | None:
    """A multiple-choice letter from the final part of a response: the last `\\boxed{}` if any, else the last
    `<answer>` tag, else the last "answer is X" / "Answer: X"; only a letter among `letters` (any case) counts,
    alone or followed by `)`, `.` or `:` and the option's text."""
    final = final_part(text)
    pattern = re.compile(rf"^\(?([{re.escape(letters)}])\)?(?:[).:\s]|$)", re.IGNORECASE)
    candidates = [last_boxed(final), last_tag(final, "answer")]
    stated = re.findall(r"answer\s*(?:is|:)\s*\(?([A-Za-z])\b", final, flags=re.IGNORECASE)
    candidates.append(stated[-1] if stated else None)
    for candidate in candidates:
        if candidate is None:
            continue
        match = pattern.match(candidate.strip())
        if match:
            return match.group(1).upper()
        return None  # the answer was given in this wrapper, and it is not a letter: a wrong answer, not a missing one
    return None
