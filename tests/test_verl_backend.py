"""trainer=verl on the CPU: the overrides against the installed verl, the task's parquet, the reward module, the model
merger and the metrics mapping. verl itself cannot train here (no GPU); its config files, config classes, reward
loader, model merger and file logger all run."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("verl", reason="trainer=verl needs the verl extra: pip install 'llmzero[verl]'")

from hydra import compose as hydra_compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from llmzero.config.hydra_store import register_configs  # noqa: E402
from llmzero.config.verl_trainer import VerlTrainerConfig  # noqa: E402
from llmzero.metrics import names  # noqa: E402
from llmzero.paths import conf_dir  # noqa: E402
from llmzero.app import build_space, root_hparams  # noqa: E402
from llmzero.state.phase_dir import list_checkpoints  # noqa: E402
from llmzero.tasks.base import build_task, summarise  # noqa: E402
from llmzero.trainers.factory import trainer_from_config  # noqa: E402
from llmzero.trainers.verl import data  # noqa: E402
from llmzero.trainers.verl.adapters import export_checkpoint, extract_adapter  # noqa: E402
from llmzero.trainers.verl.compose import VerlConfigError, checked  # noqa: E402
from llmzero.trainers.verl.metrics_map import canonical  # noqa: E402
from llmzero.trainers.verl.overrides import RunFiles, SearchRun, Topology, phase_overrides, problems  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
TASKS = ("chemcot", "papersearchqa", "ssmr", "wildsci")
PAPER_8_GPUS = Topology(n_gpus_per_node=8, nnodes=1, rollout_tp=1)


def compose_cfg(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return hydra_compose(config_name="config", overrides=list(overrides))


def run_files(tmp: Path, **kw) -> RunFiles:
    base = dict(model_path="Qwen/Qwen3-4B", train_files=str(tmp / "train.parquet"), val_files=[str(tmp / "val.parquet")],
                reward_module=str(tmp / "reward_fn.py"), phase_config=str(tmp / "phase_config.json"),
                checkpoint_dir=str(tmp / "ckpt"), phase_dir=str(tmp), max_prompt_length=2048)
    return RunFiles(**{**base, **kw})


def paper_hparams(lr, kl, t, clip, batch, rank, rollouts) -> dict:
    return dict(learning_rate=lr, kl_coef=kl, temperature=t, clip_ratio_low=clip, clip_ratio_high=clip, grad_clip=1.0,
                entropy_coef=0.0, batch_size=batch, rollouts=rollouts, response_length=6144, norm_adv_by_std=True,
                lora_rank=rank)


def test_the_paper_random_search_space_composes_and_validates_against_the_installed_verl(tmp_path):
    """Appendix B.2's space: every batch × rollouts pair (they interact through the GPU split), every rank and both
    epoch budgets, each continuous range at both ends."""
    ranks, epochs = itertools.cycle((16, 32, 64, 128)), itertools.cycle((3, 5))
    ends = itertools.cycle(((1e-5, 1e-5, 0.6, 0.15), (1e-4, 1e-3, 1.2, 0.35)))
    for batch, rollouts in itertools.product((64, 128, 256), (6, 8, 12)):
        lr, kl, t, clip = next(ends)
        hp = paper_hparams(lr, kl, t, clip, batch, next(ranks), rollouts)
        steps = next(epochs) * -(-5000 // batch)  # the paper's 5000 training prompts
        cfg = checked(phase_overrides(hp, steps, VerlTrainerConfig(), PAPER_8_GPUS, run_files(tmp_path),
                                      eval_every=5, save_every=5))
        actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
        assert (cfg.algorithm.adv_estimator, cfg.data.train_batch_size, rollout.n) == ("grpo", batch, rollouts)
        assert (actor.optim.lr, actor.kl_loss_coef, actor.use_kl_loss, rollout.temperature) == (lr, kl, True, t)
        assert (actor.clip_ratio_low, actor.clip_ratio_high, actor.optim.clip_grad) == (clip, clip, 1.0)
        assert (cfg.actor_rollout_ref.model.lora_rank, cfg.actor_rollout_ref.model.lora_alpha) == (hp["lora_rank"],
                                                                                                 2 * hp["lora_rank"])
        assert (cfg.trainer.total_training_steps, cfg.trainer.n_gpus_per_node, cfg.trainer.nnodes) == (steps, 8, 1)
        assert cfg.reward.custom_reward_function.path == str(tmp_path / "reward_fn.py")
        assert cfg.trainer.resume_mode == "disable" and actor.checkpoint.save_lora_only is True


@pytest.mark.parametrize("model", ["qwen3_0_6b", "qwen3_1_7b", "qwen3_4b", "qwen3_8b"])
def test_each_qwen3_root_configuration_passes_verl_on_the_paper_cluster(model):
    cfg = compose_cfg(f"model={model}", "trainer=verl", "cluster=ray_8gpu")
    trainer = trainer_from_config(cfg)
    assert (trainer.topology.gpus, trainer.topology.nnodes) == (8, 1)
    theta0 = root_hparams(cfg, build_space(cfg, trainer))
    assert trainer.check(theta0) == []


def test_verl_refusals_reach_the_search_as_one_message_naming_the_setting(tmp_path):
    cfg = compose_cfg("trainer=verl", "cluster.gpus_per_phase=2", "trainer.overrides=['actor_rollout_ref.rollout.n=7']")
    trainer = trainer_from_config(cfg)
    hp = paper_hparams(1e-5, 1e-3, 1.0, 0.2, 3, 16, 2)  # our rules pass (3 × 2 splits over 2 GPUs) ...
    assert trainer.check(hp)[0].startswith("verl refuses this configuration: real_train_batch_size (21)")  # ... verl's not
    with pytest.raises(VerlConfigError, match="Could not override 'trainer.no_such_key'"):
        checked(phase_overrides(hp, 1, VerlTrainerConfig(), Topology(2, 1, 1), run_files(tmp_path)) +
                ["trainer.no_such_key=1"])
    found = problems(paper_hparams(1e-5, 1e-3, 1.0, 0.2, 6, 16, 3), Topology(4, 1, 1), VerlTrainerConfig())
    assert found == ["batch_size=6 / trainer.mini_batches=1 × rollouts=3 = 18 sequences per update do not split evenly "
                     "over the phase's 4 GPUs; choose a batch_size making that a multiple of 4"]


@pytest.mark.parametrize("engine, rank, refused", [("vllm", 512, False), ("vllm", 1024, True), ("sglang", 1024, False)])
def test_a_lora_rank_vllm_cannot_serve_is_refused_before_the_phase_starts(engine, rank, refused):
    cfg = compose_cfg("trainer=verl", "cluster.gpus_per_phase=1", f"trainer.rollout_engine={engine}")
    hp = paper_hparams(1e-5, 1e-3, 1.0, 0.2, 8, rank, 4)
    found = trainer_from_config(cfg).check(hp)
    if refused:
        assert found == ["lora_rank=1024 is more than trainer.rollout_engine=vllm serves: vLLM's largest LoRA rank "
                         "is 512 (verl rounds a rank up to one vLLM allows and refuses one above it); allowed: "
                         "lora_rank ≤ 512"]
    else:
        assert not any("lora_rank" in p for p in found)


def test_papersearchqa_runs_with_its_tool_or_closed_book_and_only_the_tool_turns_on_multi_turn(tmp_path):
    theta0 = {**paper_hparams(1e-5, 1e-3, 1.0, 0.2, 4, 16, 2), "response_length": 512}  # a batch the fixture holds
    for tool in ("true", "false"):  # with the tool, check() composes and validates the multi-turn keys too
        cfg = compose_cfg("trainer=verl", "cluster.gpus_per_phase=1", "task=papersearchqa", f"task.search_tool={tool}",
                          f"task.data_files={FIXTURES / 'papersearchqa.jsonl'}")
        assert trainer_from_config(cfg).check(theta0) == []
    search = SearchRun(tool_config=str(tmp_path / "tools.yaml"), agent_loops=str(tmp_path / "loops.yaml"), max_turns=3)
    with_tool = phase_overrides(theta0, 2, VerlTrainerConfig(), Topology(1, 1, 1), run_files(tmp_path, search=search))
    cfg = checked(with_tool)
    turns, agent = cfg.actor_rollout_ref.rollout.multi_turn, cfg.actor_rollout_ref.rollout.agent
    assert (turns.enable, turns.max_user_turns, turns.tool_config_path) == (True, 3, search.tool_config)
    assert (agent.default_agent_loop, agent.agent_loop_config_path) == ("llmzero_search", search.agent_loops)
    closed = checked(phase_overrides(theta0, 2, VerlTrainerConfig(), Topology(1, 1, 1), run_files(tmp_path)))
    assert not closed.actor_rollout_ref.rollout.multi_turn.enable
    assert closed.actor_rollout_ref.rollout.agent.default_agent_loop == "single_turn_agent"


def test_topology_comes_from_the_cluster_only():
    assert Topology.from_cluster({"gpus_per_phase": 16, "gpus_per_node": 8, "rollout_tensor_parallel": 2}) == \
        Topology(n_gpus_per_node=8, nnodes=2, rollout_tp=2)
    assert Topology.from_cluster({"gpus_per_phase": 4}) == Topology(4, 1, 1)
    with pytest.raises(ValueError, match="cluster.gpus_per_phase=0 is not valid for trainer=verl"):
        Topology.from_cluster({"gpus_per_phase": 0})
    with pytest.raises(ValueError, match="cluster.rollout_tensor_parallel=3 does not divide the 4 GPUs of a node"):
        Topology.from_cluster({"gpus_per_phase": 8, "gpus_per_node": 4, "rollout_tensor_parallel": 3})


@pytest.mark.parametrize("task_name", TASKS + ("arithmetic",))
def test_each_task_round_trips_through_verl_parquet(task_name, tmp_path):
    extra = [] if task_name == "arithmetic" else [f"task.data_files={FIXTURES / (task_name + '.jsonl')}"]
    task = build_task(OmegaConf.to_container(compose_cfg(f"task={task_name}", *extra).task, resolve=True))
    for split, examples in task.splits().items():
        if not examples:
            continue
        path = data.write_split(tmp_path / f"{split}.parquet", examples, split, task.name)
        assert data.examples_from(path) == examples
        from datasets import Dataset

        first = Dataset.from_parquet(str(path))[0]
        assert first["data_source"] == f"{split}/{examples[0].subtask}"
        assert first["prompt"] == [{"role": "user", "content": examples[0].prompt}]
        assert first["reward_model"] == {"style": "rule", "ground_truth": examples[0].answer}


@pytest.mark.parametrize("task_name", ["chemcot", "arithmetic"])
def test_the_reward_module_scores_with_the_task_through_verls_own_loader(task_name, tmp_path):
    from verl.trainer.ppo.reward import get_custom_reward_fn

    extra = [] if task_name == "arithmetic" else [f"task.data_files={FIXTURES / (task_name + '.jsonl')}"]
    task_cfg = OmegaConf.to_container(compose_cfg(f"task={task_name}", *extra).task, resolve=True)
    (tmp_path / "phase_config.json").write_text(json.dumps({"task": task_cfg}))
    module = data.write_reward_module(tmp_path)
    cfg = checked(phase_overrides(paper_hparams(1e-5, 1e-3, 1.0, 0.2, 8, 16, 2), 1, VerlTrainerConfig(),
                                  Topology(1, 1, 1), run_files(tmp_path, reward_module=str(module))))
    score = get_custom_reward_fn(cfg)  # verl's loader: the file, the name, reward_kwargs bound
    task = build_task(task_cfg)
    reference = getattr(task, "reference", lambda ex: ex.answer)  # the optional Task method (tasks/base.py)
    for ex in task.splits()["val"][:4]:
        row = data.rows([ex], "val", task.name)[0]
        right = score(data_source=row["data_source"], solution_str=reference(ex),
                      ground_truth=row["reward_model"]["ground_truth"], extra_info=row["extra_info"])
        wrong = score(data_source=row["data_source"], solution_str="I do not know.",
                      ground_truth=row["reward_model"]["ground_truth"], extra_info=row["extra_info"])
        assert (right["score"], right["acc"], wrong["score"], wrong["acc"]) == (1.0, 1.0, 0.0, 0.0)
        # every response carries the same keys (verl averages each per data source): a task's reward_details
        # (ChemCoT's figures) or the score alone
        parts = set(task.reward_details("", ex)) if hasattr(task, "reward_details") else {"score"}
        assert set(right) == set(wrong) == parts | {"acc"}


VERL_LAYOUT = textwrap.dedent("""
    # A checkpoint in verl's FSDP layout, as its checkpoint manager writes it for one rank: DTensor shards of the LoRA
    # tensors (save_lora_only), fsdp_config.json, huggingface/ and lora_train_meta.json.
    import json, os, sys, torch, torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import distribute_tensor, Shard
    from transformers import LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    out, base, port = sys.argv[1], sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", rank=0, world_size=1, init_method="tcp://127.0.0.1:" + port)
    mesh = init_device_mesh("cpu", (1,), mesh_dim_names=("fsdp",))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, architectures=["LlamaForCausalLM"])
    LlamaForCausalLM(cfg).save_pretrained(base)
    model = get_peft_model(LlamaForCausalLM.from_pretrained(base), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    lora = {k: v.detach() for k, v in model.state_dict().items() if "lora_" in k}
    os.makedirs(out + "/huggingface")
    torch.save({k: distribute_tensor(v, mesh, [Shard(0)]) for k, v in lora.items()}, out + "/model_world_size_1_rank_0.pt")
    torch.save(lora, out + "/expected.pt")
    json.dump({"FSDP_version": 2, "world_size": 1}, open(out + "/fsdp_config.json", "w"))
    json.dump({"r": 4, "lora_alpha": 8, "task_type": "CAUSAL_LM"}, open(out + "/lora_train_meta.json", "w"))
    cfg.save_pretrained(out + "/huggingface")
    dist.destroy_process_group()
""")


def test_verls_model_merger_extracts_the_adapter_of_a_checkpoint_in_verls_layout(tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    actor, base = tmp_path / "global_step_4" / "actor", tmp_path / "base"
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = str(free.getsockname()[1])
    subprocess.run([sys.executable, "-c", VERL_LAYOUT, str(actor), str(base), port], check=True, timeout=120)
    out = extract_adapter(actor, tmp_path / "adapter")
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["peft_type"]) == (4, 8, "LORA")
    expected = {k.replace(".default.weight", ".weight"): v for k, v in torch.load(actor / "expected.pt").items()}
    got = load_file(out / "adapter_model.safetensors")
    assert set(got) == set(expected)
    for key, value in expected.items():  # the merger keeps bf16
        assert torch.equal(got[key], value.to(torch.bfloat16))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(out))  # what verl does with it
    loaded = {k: v for k, v in model.state_dict().items() if "lora_B" in k}
    assert loaded and all(v.abs().sum() > 0 for v in loaded.values())
    mine = export_checkpoint(actor, tmp_path / "phase" / "checkpoints" / "step_4", {"step": 4})
    assert list_checkpoints(tmp_path / "phase") == [4] and (mine / "COMPLETE").exists()


def test_verl_metrics_map_to_canonical_names_and_the_tasks_own_aggregate():
    chemcot = build_task(OmegaConf.to_container(
        compose_cfg("task=chemcot", f"task.data_files={FIXTURES / 'chemcot.jsonl'}").task, resolve=True))
    line = {"step": 3, "data": {"critic/score/mean": 0.4, "actor/kl_loss": 0.01, "actor/entropy": 0.9,
                                "actor/pg_clipfrac": 0.02, "actor/grad_norm": 1.5, "actor/lr": 1e-5,
                                "response_length/mean": 300.0, "response_length/clip_ratio": 0.1, "timing_s/step": 40.0,
                                "val-core/val/mol_und_fg_count/acc/mean@1": 0.5,
                                "val-core/val/mol_und_ring_count/acc/mean@1": 1.0,
                                "val-core/val/mol_edit_add/acc/mean@1": 0.25,
                                "val-core/val/reaction_fs/acc/mean@1": 0.0,
                                "val-core/test/mol_edit_add/acc/mean@1": 1.0,
                                "val-aux/val/mol_edit_add/score/mean@1": 0.25}}
    counts = {"val": {"mol_und_fg_count": 2, "mol_und_ring_count": 6, "mol_edit_add": 4, "reaction_fs": 4},
              "test": {"mol_edit_add": 3}}
    rec = canonical(line, start_step=10, global_offset=100, counts=counts,
                    summarise=lambda s, c: summarise(chemcot, s, c))
    assert (rec[names.STEP], rec[names.GLOBAL_STEP]) == (13, 113)
    assert (rec[names.REWARD_MEAN], rec[names.KL], rec[names.CLIP_RATIO], rec[names.STEP_TIME]) == (0.4, 0.01, 0.02, 40.0)
    # ChemCoTBench's score: the mean over the und, edit and rxn families of their subtask means, by hand
    assert rec[names.VAL_SCORE] == pytest.approx(((0.5 + 1.0) / 2 + 0.25 + 0.0) / 3)
    assert rec["val/mol_und"] == 0.75 and rec["val/mol_edit_add"] == 0.25 and rec[names.TEST_SCORE] == 1.0
    assert canonical({"step": 0, "data": {}}, start_step=0, global_offset=0, summarise=dict, counts={}) is None


def test_chemcots_own_figures_come_through_verls_validation_as_through_score(tmp_path):
    """verl averages each key of every response's reward per data source (val-aux/<split>/<subtask>/<key>/mean@1);
    ChemCoT's figures rebuilt from those means equal what score() prints for the same responses."""
    from collections import defaultdict

    from llmzero.tasks.benchmark import pack
    from llmzero.tasks.base import Example
    from llmzero.trainers.verl.reward import compute_score

    task_cfg = OmegaConf.to_container(
        compose_cfg("task=chemcot", f"task.data_files={FIXTURES / 'chemcot.jsonl'}").task, resolve=True)
    chemcot = build_task(task_cfg)
    phase_config = tmp_path / "phase_config.json"
    phase_config.write_text(json.dumps({"task": task_cfg}))

    def ex(family, subtask, gt="", **fields):
        base = {"source": "", "added": "", "removed": "", "reference": ""}
        return Example("…", pack(family=family, subtask=subtask, gt=gt, **{**base, **fields}), f"{family}_{subtask}")

    examples = [ex("mol_und", "fg_count", gt="3")] * 4 + [ex("mol_edit", "delete", source="ClCCCl", removed="halo")] * 2
    responses = ['{"count": 3}', '{"count": 5}', "no JSON at all", '{"count": "three"}', '{"output": "CCCCl"}',
                 "I cannot answer"]
    by_source: dict[str, list[dict]] = defaultdict(list)
    for e, r in zip(examples, responses):
        got = compute_score(data.data_source("val", e.subtask), r, e.answer, {"subtask": e.subtask},
                            phase_config=str(phase_config))
        assert got["acc"] == got["score"]
        by_source[data.data_source("val", e.subtask)].append(got)
    assert len({frozenset(d) for rows in by_source.values() for d in rows}) == 1  # verl needs one key set
    line = {"step": 1, "data": {}}
    for source, rows in by_source.items():
        for key in rows[0]:
            mean = sum(d[key] for d in rows) / len(rows)
            line["data"][f"val-core/{source}/acc/mean@1" if key == "acc" else f"val-aux/{source}/{key}/mean@1"] = mean
    counts = {"val": {"mol_und_fg_count": 4, "mol_edit_delete": 2}}
    rec = canonical(line, start_step=0, global_offset=0, counts=counts, summarise=lambda s, c: summarise(chemcot, s, c),
                    figures=chemcot.figures)
    want = chemcot.score(responses, examples)
    figures = {k: v for k, v in want.items() if k.endswith(("_valid", "_parsed", "_mae"))}
    assert figures == {"mol_und_fg_count_valid": 0.5, "mol_und_fg_count_parsed": 0.5, "mol_und_fg_count_mae": 1.0,
                       "mol_edit_delete_valid": 0.5, "mol_edit_delete_parsed": 1.0}
    for key, value in figures.items():
        assert rec[names.VAL_PREFIX + key] == pytest.approx(value)
    assert rec[names.VAL_SCORE] == pytest.approx(want["score"])


def test_final_scores_are_generated_at_the_models_eval_length_not_the_phases(tmp_path):
    """Qwen3: phases train at response_length 6144, the test and base-model scores use 8192 (§4.1, Appendix B.1)."""
    from llmzero.trainers.verl.evaluate import eval_hparams

    cfg = compose_cfg("model=qwen3_4b", "trainer=verl", "cluster=ray_8gpu")
    trainer = trainer_from_config(cfg)
    theta0 = root_hparams(cfg, build_space(cfg, trainer))
    assert (theta0["response_length"], trainer.eval_length(theta0)) == (6144, 8192)
    request = {"checkpoint": None, "split": "test", "hparams": theta0, "max_new_tokens": trainer.eval_length(theta0)}
    hp = eval_hparams(request)
    verl_cfg = checked(phase_overrides(hp, 1, VerlTrainerConfig(), PAPER_8_GPUS, run_files(tmp_path)))
    assert verl_cfg.data.max_response_length == 8192 and verl_cfg.actor_rollout_ref.rollout.response_length == 8192
    assert eval_hparams({**request, "max_new_tokens": None})["response_length"] == 6144


def test_clip_ratios_are_inert_with_one_update_per_step_and_no_agent_may_change_them():
    from llmzero.agents.base import Proposal
    from llmzero.agents.validation import PlanRules, ProposalError, validate_proposal
    from llmzero.hparams.space import HParamError

    cfg = compose_cfg("trainer=verl", "cluster.gpus_per_phase=1")
    trainer = trainer_from_config(cfg)
    space = build_space(cfg, trainer)
    assert set(trainer.inert_hparams()) == {"clip_ratio_low", "clip_ratio_high"}
    assert "the clip never binds" in space.specs["clip_ratio_high"].inert and not space.specs["learning_rate"].inert
    from llmzero.agents.llm.render import space_text

    assert "no effect here, do not change: trainer=verl updates once per step" in space_text(space)  # the LLM's prompt
    theta0 = root_hparams(cfg, space)
    rules = PlanRules(space=space, steps_per_epoch=lambda hp: 10, max_steps_cap=50, trainer_check=trainer.check)
    with pytest.raises((HParamError, ProposalError), match=r"changes.clip_ratio_high=0.3 changes a parameter that has "
                                                             r"no effect here \(trainer=verl updates once per step"):
        validate_proposal(Proposal({"clip_ratio_high": 0.3}, "d", "r"), parent_hparams=theta0, parent_checkpoints=[5],
                          scratch=False, rules=rules)
    assert validate_proposal(Proposal({"learning_rate": 2e-5}, "d", "r"), parent_hparams=theta0, parent_checkpoints=[5],
                             scratch=False, rules=rules).hparams["learning_rate"] == 2e-5
    # With several mini-batches the later ones are off-policy, the clip binds, and the ratios are levers again.
    off_policy = trainer_from_config(compose_cfg("trainer=verl", "cluster.gpus_per_phase=1", "trainer.mini_batches=2"))
    assert off_policy.inert_hparams() == {} and not build_space(cfg, off_policy).specs["clip_ratio_high"].inert


@pytest.mark.parametrize("choice, expected", [("auto", "sdpa"), ("eager", "eager"),
                                              ("flash_attention_2", "flash_attention_2")])
def test_the_attention_kernel_is_one_the_machine_has(choice, expected, tmp_path):
    """verl defaults the actor to flash_attention_2, which nothing installs; `auto` takes it only where flash_attn
    imports (not on this CPU machine, nor on a GPU node without it)."""
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash_attn is installed here: auto would rightly choose it")
    hp = paper_hparams(1e-5, 1e-3, 1.0, 0.2, 8, 16, 4)
    opts = VerlTrainerConfig(attn_implementation=choice)
    cfg = checked(phase_overrides(hp, 1, opts, Topology(1, 1, 1), run_files(tmp_path)))
    assert cfg.actor_rollout_ref.model.override_config.attn_implementation == expected


def test_the_install_carries_what_verls_default_trainer_imports():
    """verl 0.9's v1 trainer (trainer.use_v1, its default; it runs our checkpoint callback) imports transfer_queue,
    which only verl's verl-core extra brings: `pip install 'llmzero[verl]'` must bring it too."""
    from verl.trainer.ppo.v1 import get_trainer_cls

    assert get_trainer_cls("sync").__name__ == "PPOTrainerSync"
    cfg = checked(phase_overrides(paper_hparams(1e-5, 1e-3, 1.0, 0.2, 8, 16, 4), 1, VerlTrainerConfig(),
                                  Topology(1, 1, 1), run_files(Path("/tmp"))))
    assert cfg.trainer.use_v1 is True
