"""One rule for asking an agent with a fallback, for every role (llmzero.agents.fallback)."""

import pytest

from llmzero.agents.base import AgentBase, AgentGaveUp, StopDecision
from llmzero.agents.fallback import consult
from llmzero.agents.validation import ProposalError
from llmzero.search.early_stop import ask_stopper
from llmzero.tree import Cost


class Scripted(AgentBase):
    def __init__(self, name, answer=None, gives_up=False):
        self.name, self.answer, self.gives_up = name, answer, gives_up

    def should_stop(self, ctx):
        if self.gives_up:
            raise AgentGaveUp(f"{self.name} timed out", Cost(agent_usd=0.25, agent_calls=3))
        return StopDecision(self.answer, f"{self.name} says", Cost(agent_usd=0.5, agent_calls=1))


def reject_continue(decision):
    if not decision.stop:
        raise ProposalError("only STOP is valid here")
    return "plan"


def test_primary_answers_and_its_check_result_is_returned():
    got = consult(Scripted("llm", True), Scripted("heuristic", False), lambda a: a.should_stop(None), reject_continue)
    assert got.answer.reason == "llm says" and got.checked == "plan" and got.note == ""
    assert got.cost.agent_usd == 0.5


@pytest.mark.parametrize("primary, why", [(Scripted("llm", gives_up=True), "gave up"),
                                          (Scripted("llm", False), "answered invalidly")])
def test_fallback_answers_when_the_primary_gives_up_or_answers_invalidly(primary, why):
    got = consult(primary, Scripted("heuristic", True), lambda a: a.should_stop(None), reject_continue)
    assert got.answer.reason == "heuristic says" and got.note.startswith(f" (fallback: llm {why}: ")
    assert got.cost.agent_usd == pytest.approx(0.5 + (0.25 if primary.gives_up else 0.5))  # every attempt is paid


def test_without_a_fallback_the_failure_is_raised_with_its_cost():
    with pytest.raises(AgentGaveUp) as err:
        consult(Scripted("llm", gives_up=True), None, lambda a: a.should_stop(None))
    assert err.value.cost.agent_calls == 3
    with pytest.raises(AgentGaveUp, match="only STOP is valid"):
        consult(Scripted("llm", False), None, lambda a: a.should_stop(None), reject_continue)


def test_the_stopper_continues_when_nobody_answers_and_keeps_the_cost():
    d = ask_stopper(Scripted("llm", gives_up=True), None, None)
    assert not d.stop and d.reason.startswith("CONTINUE: the stopper gave no answer") and d.cost.agent_calls == 3
    d = ask_stopper(Scripted("llm", gives_up=True), Scripted("heuristic", True), None)
    assert d.stop and d.reason.startswith("heuristic says (fallback: llm gave up") and d.cost.agent_calls == 4
