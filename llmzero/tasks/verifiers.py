"""Built-in rewards for `task=dataset`: each reads the answer from a response's final part (after any thinking,
answers.py) and compares it with the reference, returning 1.0 or 0.0; none raises, and each is linear in the
response's length (answers.py's readers are).

    exact    the normalised answer equals the normalised reference (case, articles, punctuation and spacing
             ignored, as SQuAD's and Search-R1's exact match); the answer is the last \\boxed{}, else the last
             <answer> tag, else the final part's last line
    math     numeric / LaTeX equivalence through math-verify (`pip install 'llmzero[math]'`)
    choice   the multiple-choice letter (A-J) equals the reference letter
    boxed    the last \\boxed{} equals the reference, normalised
    tag      the last <tag>...</tag> (task.reward.tag) equals the reference, normalised
"""

from __future__ import annotations

import re
import string
from typing import Callable

from .answers import choice_letter, final_part, last_boxed, last_tag

__all__ = ["VERIFIER_REFERENCE", "make_verifier", "normalise"]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", str(text).lower().translate(_PUNCT))
    return " ".join(text.split())


def _stated(response: str) -> str:
    final = final_part(response)
    for found in (last_boxed(final), last_tag(final, "answer")):
        if found is not None:
            return found
    lines = [ln for ln in final.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _exact(response: str, reference: str) -> float:
    return 1.0 if normalise(_stated(response)) == normalise(reference) and normalise(reference) else 0.0


def _boxed(response: str, reference: str) -> float:
    found = last_boxed(final_part(response))
    return 1.0 if found is not None and normalise(found) == normalise(reference) else 0.0


def _choice(response: str, reference: str) -> float:
    want = str(reference).strip().strip("()").upper()[:1]
    return 1.0 if want and choice_letter(response, "ABCDEFGHIJ") == want else 0.0


def _tagged(tag: str) -> Callable[[str, str], float]:
    def verify(response: str, reference: str) -> float:
        found = last_tag(final_part(response), tag)
        return 1.0 if found is not None and normalise(found) == normalise(reference) else 0.0
    return verify


MATH_TIMEOUT_S = 5  # math-verify's own per-call limit; a reward must stay bounded


def _math() -> Callable[[str, str], float]:
    try:
        from math_verify import parse, verify
    except ImportError:
        raise ValueError("task.reward.name=math needs the math-verify package, which is not installed: pip install "
                         "'llmzero[math]'") from None

    def check(response: str, reference: str) -> float:
        try:
            gold = parse(f"${reference}$" if "$" not in reference and "\\boxed" not in reference else reference,
                         parsing_timeout=MATH_TIMEOUT_S)
            answer = parse(final_part(response)[-20000:], parsing_timeout=MATH_TIMEOUT_S)
            return 1.0 if gold and answer and verify(gold, answer, timeout_seconds=MATH_TIMEOUT_S) else 0.0
        except Exception:  # noqa: BLE001 - an unparsable response is a wrong one, never a crash of the rollout
            return 0.0

    return check


def make_verifier(name: str, tag: str = "answer") -> Callable[[str, str], float]:
    """The built-in reward `name` as (response, reference) -> 0.0 or 1.0."""
    builtins: dict[str, Callable[[], Callable[[str, str], float]]] = {
        "exact": lambda: _exact, "boxed": lambda: _boxed, "choice": lambda: _choice, "tag": lambda: _tagged(tag),
        "math": _math}
    if name not in builtins:
        raise ValueError(f"task.reward.name={name!r} is not a built-in verifier: expected one of {sorted(builtins)}")
    return builtins[name]()


# A response each verifier scores 1 for the reference (the warm start of builtin:tiny writes it).
VERIFIER_REFERENCE: dict[str, Callable[[str, str], str]] = {
    "exact": lambda ref, tag: f"\\boxed{{{ref}}}", "boxed": lambda ref, tag: f"\\boxed{{{ref}}}",
    "math": lambda ref, tag: f"\\boxed{{{ref}}}", "choice": lambda ref, tag: f"\\boxed{{{ref}}}",
    "tag": lambda ref, tag: f"<{tag}>{ref}</{tag}>"}
