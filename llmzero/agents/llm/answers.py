"""The JSON an LLM agent must answer with, one schema per role, and how it is read back.

The schemas are pydantic models so the same definition renders the JSON Schema shown in the
prompt and validates the reply; a validation error names the field, the value and what is
expected, and goes back to the model verbatim on a re-ask.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..base import ErrorFix, Observation, Proposal, StopDecision

Scalar = Union[bool, int, float, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObservationAnswer(_Strict):
    metric: str = Field(description="canonical metric name, e.g. kl or val/score")
    claim: str = Field(description="what the metric did, with a direction word: rises, falls, flat or spikes")
    start_step: Optional[int] = Field(default=None, description="first step of the range the claim is about")
    end_step: Optional[int] = Field(default=None, description="last step of that range")


class ProposerAnswer(_Strict):
    diagnosis: str = Field(description="training health of the parent phase, citing metrics and steps")
    observations: list[ObservationAnswer] = Field(default_factory=list, description="checkable claims behind the diagnosis")
    changes: dict[str, Scalar] = Field(description="hyperparameter -> new value; only keys that change")
    rationale: str = Field(description="why these changes together address the diagnosis (causal reasoning)")
    resume_step: Optional[int] = Field(description="parent checkpoint step to resume from; null = from scratch")
    epochs: Optional[float] = Field(default=None, description="epoch budget of the new phase")
    max_steps: Optional[int] = Field(default=None, description="phase length in optimiser steps (overrides epochs)")


class StopperAnswer(_Strict):
    decision: Literal["CONTINUE", "STOP"]
    reason: str = Field(description="can the running phase realistically overtake the incumbent, and why")


class AnalyzerAnswer(_Strict):
    fixable: bool
    diagnosis: str = Field(description="root cause of the failure, citing the error")
    changes: dict[str, Scalar] = Field(default_factory=dict, description="hyperparameter -> new value that avoids it")
    rationale: str = ""
    max_steps: Optional[int] = None


ROLE_SCHEMAS: dict[str, type[_Strict]] = {
    "proposer": ProposerAnswer,
    "stopper": StopperAnswer,
    "analyzer": AnalyzerAnswer,
}


class AnswerError(ValueError):
    """A reply that is not valid JSON for the role's schema; the message is shown to the model."""


def schema_text(role: str) -> str:
    return json.dumps(ROLE_SCHEMAS[role].model_json_schema(), indent=1)


_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in a reply: a fenced ```json block if present, else the outermost braces.

    Models often wrap the object in prose or a code fence despite instructions; both are accepted,
    anything else is an AnswerError.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1:  # an unterminated object still gets a JSON error message, not "no JSON"
        candidates.append(text[start:end + 1] if end > start else text[start:])
    if not candidates:
        raise AnswerError("the reply contains no JSON object; answer with one JSON object matching the schema")
    last_error = ""
    for raw in candidates:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            continue
        if isinstance(value, dict):
            return value
        last_error = f"expected a JSON object, got {type(value).__name__}"
    raise AnswerError(f"the reply is not valid JSON ({last_error}); answer with one JSON object matching the schema")


def parse_answer(role: str, text: str) -> _Strict:
    return parse_as(ROLE_SCHEMAS[role], text)


def parse_as(schema: type[_Strict], text: str) -> Any:
    """The reply's JSON object validated against `schema`; an AnswerError naming each field that does not match."""
    data = extract_json(text)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(answer)"
            got = "" if err["type"] == "missing" else f" (got {err.get('input')!r:.80})"
            problems.append(f"{loc}: {err['msg']}{got}")
        raise AnswerError("the JSON does not match the schema: " + "; ".join(problems)) from None


def to_proposal(answer: ProposerAnswer, agent: str) -> Proposal:
    changes = dict(answer.changes)
    if answer.epochs is not None:  # the epoch budget is a hyperparameter: the phase length follows from it
        changes.setdefault("epochs", answer.epochs)
    return Proposal(
        changes=changes, diagnosis=answer.diagnosis, rationale=answer.rationale,
        observations=[Observation(**o.model_dump()) for o in answer.observations],
        resume_step=answer.resume_step, max_steps=answer.max_steps, epochs=answer.epochs, agent=agent,
    )


def to_stop(answer: StopperAnswer) -> StopDecision:
    return StopDecision(stop=answer.decision == "STOP", reason=f"{answer.decision}: {answer.reason}")


def to_fix(answer: AnalyzerAnswer, agent: str) -> ErrorFix:
    return ErrorFix(fixable=answer.fixable, diagnosis=answer.diagnosis, changes=dict(answer.changes),
                    rationale=answer.rationale, max_steps=answer.max_steps, agent=agent)
