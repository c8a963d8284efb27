"""PaperSearchQA's search tool under trainer=verl, on the CPU: the phase's overrides and files (VerlPhase.overrides), then
verl's own agent-loop worker built from that config, which loads our tool with verl's tool loader and our loop through
verl's agent-loop registry, reads the phase's parquet with verl's RLHFDataset, and pads and masks the responses.

What is FAKE: the rollout engine. verl's vLLM/SGLang servers need a GPU, so `ScriptedEngine` stands in for verl's LLM
server client: it follows the Search-R1 protocol like a model that has learnt it (search for the question, then answer
with what the documents say), and records the sampling parameters it was sent.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="trainer=verl needs the verl extra: pip install 'llmzero[verl]'")

from hydra import compose as hydra_compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from llmzero.app import build_space, root_hparams  # noqa: E402
from llmzero.config.hydra_store import register_configs  # noqa: E402
from llmzero.paths import conf_dir  # noqa: E402
from llmzero.trainers.base import PhaseSpec  # noqa: E402
from llmzero.trainers.factory import trainer_from_config  # noqa: E402
from llmzero.trainers.verl.compose import compose  # noqa: E402
from llmzero.trainers.verl.phase import VerlPhase  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
RESPONSE_LENGTH = 480  # tokens of builtin:tiny's character tokenizer
TASK = ["task=papersearchqa", f"task.data_files={FIXTURES / 'papersearchqa.jsonl'}",
        f"task.retriever.corpus={FIXTURES / 'pubmed_corpus.jsonl'}", "task.retriever.topk=1",
        "task.retriever.max_turns=2"]


class ScriptedEngine:
    """FAKE rollout engine (verl's LLMServerClient.generate): asked with no documents in context it searches for the
    question and runs on past `</search>` (an engine may return a few tokens past its stop string); with documents it
    answers what the last one says. `always_search` makes it search every turn instead."""

    def __init__(self, tokenizer, always_search: bool = False):
        self.tok = tokenizer
        self.always_search = always_search
        self.calls: list[dict] = []

    async def generate(self, request_id, *, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        self.calls.append({"prompt_ids": list(prompt_ids), "params": dict(sampling_params), "request_id": request_id})
        # what follows the prompt's last "Question:" (its instructions name the tags too): the question, then the
        # response so far
        after = self.tok.decode(prompt_ids, skip_special_tokens=True).rsplit("Question:", 1)[-1]
        question = after.split("<search>")[0]
        docs = re.findall(r"<information>(.*?)</information>", after, flags=re.DOTALL)
        if docs and not self.always_search:
            said = re.search(r"The answer is ([^(.]+)", docs[-1])
            text, eos = f"<answer> {said.group(1).strip() if said else 'unknown'} </answer>", True
        else:
            text, eos = f"<search> {question.strip()} </search> and then more words", False
        ids = self.tok(text, add_special_tokens=False)["input_ids"] + ([self.tok.eos_token_id] if eos else [])
        return TokenOutput(token_ids=ids[:int(sampling_params["max_tokens"])])


@pytest.fixture(scope="module")
def search_phase(tmp_path_factory):
    """A trainer=verl phase of PaperSearchQA with its tool: (verl's composed config, the overrides, the phase's task
    files). Each test takes a copy of the config."""
    tmp_path = tmp_path_factory.mktemp("search_phase")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMZERO_CACHE", str(tmp_path / "cache"))
        return _search_phase(tmp_path)


def _search_phase(tmp_path: Path):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = hydra_compose(config_name="config", overrides=["trainer=verl", "cluster.gpus_per_phase=1",
                                                             "+model.build.sft_steps=0", *TASK])
    trainer = trainer_from_config(cfg)
    trainer.prepare(print)
    hp = {**root_hparams(cfg, build_space(cfg, trainer)), "batch_size": 4, "rollouts": 2, "lora_rank": 4,
          "response_length": RESPONSE_LENGTH}
    assert trainer.check(hp) == []  # the multi-turn keys composed and validated by verl, before any phase
    spec = PhaseSpec(node_id=0, hparams=hp, output_dir=str(tmp_path / "0"), max_steps=2, eval_every=2, save_every=2)
    command = trainer.phase_command(spec)  # writes phase_config.json, which the tool builds the task from
    phase = VerlPhase(json.loads(Path(command.argv[-1]).read_text()))
    overrides, run, data = phase.overrides()
    verl_cfg = compose(overrides)
    OmegaConf.resolve(verl_cfg)
    return verl_cfg, overrides, data


def rollouts(verl_cfg, engine_of, validate: bool = True):
    """verl's AgentLoopWorker on the phase's val parquet (read by verl's RLHFDataset): the output batch, the engine."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.protocol import DataProto
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    worker_engine = {}

    def build():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(verl_cfg.actor_rollout_ref.model.path)
        worker_engine["engine"] = engine_of(tok)
        return AgentLoopWorker(verl_cfg, worker_engine["engine"])

    worker = build()
    dataset = RLHFDataset(data_files=list(verl_cfg.data.val_files), tokenizer=worker.tokenizer, config=verl_cfg.data)
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(len(dataset))]))
    batch.meta_info = {"validate": validate, "global_steps": 1}
    return asyncio.run(worker.generate_sequences(batch)), worker_engine["engine"], worker.tokenizer


def spans(mask: list[int]) -> list[tuple[int, int]]:
    """[start, end) of each run of zeros in a response mask (the tool's tokens)."""
    out, start = [], None
    for i, m in enumerate(mask + [1]):
        if m == 0 and start is None:
            start = i
        elif m == 1 and start is not None:
            out.append((start, i))
            start = None
    return out


def test_the_phase_selects_our_search_loop_and_tool_for_verls_rollouts(search_phase):
    verl_cfg, overrides, data = search_phase
    assert "actor_rollout_ref.rollout.agent.default_agent_loop=llmzero_search" in overrides
    rollout = verl_cfg.actor_rollout_ref.rollout
    assert rollout.multi_turn.enable and rollout.multi_turn.max_user_turns == 2
    assert rollout.agent.default_agent_loop == "llmzero_search"
    tools = OmegaConf.load(rollout.multi_turn.tool_config_path)
    assert tools.tools[0].class_name == "llmzero.trainers.verl.retrieval_tool.RetrievalTool"
    assert OmegaConf.load(rollout.agent.agent_loop_config_path)[0]._target_ == \
        "llmzero.trainers.verl.retrieval_loop.SearchAgentLoop"
    assert data.search is not None and data.search.max_turns == 2


def test_verls_agent_loop_worker_searches_inserts_the_documents_masked_and_the_answer_scores(search_phase):
    from verl.trainer.ppo.reward import get_custom_reward_fn

    verl_cfg, _, data = search_phase
    out, engine, tok = rollouts(verl_cfg.copy(), ScriptedEngine)
    responses, masks = out.batch["responses"], out.batch["response_mask"]
    lengths = out.batch["attention_mask"][:, -responses.shape[1]:].sum(-1).tolist()
    assert len(lengths) == len(data.splits["val"]) and list(out.non_tensor_batch["__num_turns__"]) == [4] * len(lengths)

    score = get_custom_reward_fn(verl_cfg)  # the phase's reward module, loaded as verl loads it
    rewards = []
    for i, n in enumerate(lengths):
        ids, mask = responses[i, :n].tolist(), masks[i, :n].tolist()
        text = tok.decode(ids, skip_special_tokens=True)
        # searched once, the engine's words past </search> cut off, the documents inline, then the answer
        assert re.fullmatch(r"<search> .+ </search>\n\n<information>Doc 1 \(Title: .+</information>\n\n"
                            r"<answer> .+ </answer>", text, flags=re.DOTALL), text
        assert "and then more words" not in text
        # exactly the tool's text is masked out of the loss
        (start, end), = spans(mask)
        assert tok.decode(ids[start:end]) == text[text.index("\n\n<information>"):text.index("<answer>")]
        assert masks[i, n:].sum() == 0  # padding
        row = out.non_tensor_batch
        rewards.append(score(row["data_source"][i], text, row["reward_model"][i]["ground_truth"],
                             row["extra_info"][i])["score"])
    assert sum(rewards) >= 1 and set(rewards) <= {0.0, 1.0}, rewards  # answers read from retrieved documents score

    # the rows' turns interleave (verl runs them concurrently): each first turn, and the turn continuing its stream
    firsts = [c for c in engine.calls if c["params"]["max_tokens"] == RESPONSE_LENGTH]
    assert len(firsts) == len(lengths) and len(engine.calls) == 2 * len(lengths)
    for first in firsts:
        assert first["params"]["stop"] == ["</search>"] and first["params"]["include_stop_str_in_output"] is True
        assert first["params"]["temperature"] == 0  # validation is greedy
        second, = [c for c in engine.calls if len(c["prompt_ids"]) > len(first["prompt_ids"])
                   and c["prompt_ids"][:len(first["prompt_ids"])] == first["prompt_ids"]]
        assert second["request_id"] == first["request_id"]  # one response's turns go to the same server
        # the prompt, the cut first turn and the documents: the budget left is what they did not use
        assert second["params"]["max_tokens"] == RESPONSE_LENGTH - (len(second["prompt_ids"]) - len(first["prompt_ids"]))


def test_searches_stop_at_max_turns_and_everything_fits_the_response_budget(search_phase):
    verl_cfg = search_phase[0].copy()
    rollout = verl_cfg.actor_rollout_ref.rollout
    rollout.name = "sglang"  # its stop-string switch differs from vLLM's
    rollout.response_length = 1000  # room for more searches than max_turns allows
    out, engine, tok = rollouts(verl_cfg, lambda t: ScriptedEngine(t, always_search=True), validate=False)
    per_row = len(engine.calls) // len(out)
    assert per_row == 3 and list(out.non_tensor_batch["__num_turns__"]) == [6] * len(out)  # 2 searches, 1 more turn
    assert all(c["params"].get("no_stop_trim") is True for c in engine.calls if "stop" in c["params"])
    assert sum("stop" in c["params"] for c in engine.calls) == 2 * len(out)  # no stop string after the last search
    assert all(c["params"]["max_tokens"] >= 1 for c in engine.calls)
    text = tok.decode(out.batch["responses"][0], skip_special_tokens=True)
    assert text.count("<information>") == 2

    # a budget too small for the documents: the response is cut inside them, mask and tokens stay aligned
    rollout.response_length = 120
    short, _, tok = rollouts(verl_cfg, lambda t: ScriptedEngine(t, always_search=True), validate=False)
    assert short.batch["responses"].shape[1] == 120
    assert (short.batch["attention_mask"][:, -120:].sum(-1) == 120).all()
    for ids, mask in zip(short.batch["responses"].tolist(), short.batch["response_mask"].tolist()):
        text = tok.decode(ids, skip_special_tokens=True)
        (start, end), = spans(mask)  # the search call, then the documents up to the budget's end
        assert end == 120 and text.endswith(tok.decode(ids[start:])) and "</information>" not in text
