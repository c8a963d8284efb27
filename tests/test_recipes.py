"""Recipes replayed (paper §4.6), the static baselines' trials (Appendix B.2, E.1) and the no_multistage ablation
(Table 2), on the synthetic trainer through the real config composition and the real engine."""

import math
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.schema import ConfigError
from llmzero.config.hydra_store import register_configs, shipped_recipes
from llmzero.config.strategies import SweeperConfig, SweepParam
from llmzero.hparams.space import HParamSpace
from llmzero.paths import conf_dir
from llmzero.preflight import expand_recipe_path
from llmzero.strategy.replay import find_recipe, load_recipe, replay_phases
from llmzero.strategy.static import grid_trials, random_trials

FAST = ["trainer=synthetic", "trainer.step_delay_s=0", "search.display=false", "wandb.mode=disabled",
        "cluster.poll_interval_s=0.01"]


def cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=[*FAST, *overrides])


def run(where: Path, *overrides):
    return run_search(cfg(*overrides), where, Console(file=open("/dev/null", "w")))


@pytest.fixture(scope="module")
def space():
    c = cfg()
    from omegaconf import OmegaConf
    return HParamSpace.from_config(OmegaConf.to_container(c.search.space, resolve=True))


THETA0 = {"learning_rate": 1e-3, "kl_coef": 0.001, "temperature": 1.0, "clip_ratio_low": 0.2, "clip_ratio_high": 0.2,
          "grad_clip": 1.0, "entropy_coef": 0.0, "batch_size": 32, "rollouts": 8, "epochs": 3.0, "max_steps": 0,
          "response_length": 8, "norm_adv_by_std": True, "lora_rank": 8}


def spe(train_size):
    return lambda h: math.ceil(train_size / h["batch_size"])


def test_export_then_replay_reproduces_the_schedule_exactly(tmp_path):
    found = run(tmp_path / "search", "search.budget=4")
    exported = yaml.safe_load((tmp_path / "search" / "recipe.yaml").read_text())
    assert exported["llmzero_recipe"] == 2 and len(exported["phases"]) == len(found.path) >= 2
    assert all(p["steps_per_epoch"] == 16 for p in exported["phases"])  # 512 prompts / 32 per step

    replayed = run(tmp_path / "replay", "recipe=base_recipe", "recipe.name=mine",
                   f"recipe.file={tmp_path / 'search' / 'recipe.yaml'}")
    nodes = list(replayed.tree)
    assert [n.hparams for n in nodes] == [p["hparams"] for p in exported["phases"]]
    assert [n.max_steps for n in nodes] == [p["steps"] for p in exported["phases"]]
    # a chain: each phase resumes from the last step of the one before, with no agent and no early stop
    assert [n.resume_step for n in nodes[1:]] == [p["steps"] for p in exported["phases"][:-1]]
    assert all(n.status == "completed" and n.agent == "recipe mine" for n in nodes)
    again = yaml.safe_load((tmp_path / "replay" / "recipe.yaml").read_text())
    assert [p["hparams"] for p in again["phases"]] == [p["hparams"] for p in exported["phases"]]
    assert (tmp_path / "replay" / "report.html").is_file()


def test_replay_rescales_lengths_by_steps_per_epoch_unless_told_to_keep_them(space):
    recipe = {"phases": [{"hparams": THETA0, "steps": 30, "steps_per_epoch": 10},
                         {"hparams": {"learning_rate": 5e-4}, "steps": 15, "steps_per_epoch": 10}]}
    # the target's split is 4x larger (160 prompts / 32 → 5 steps per epoch... 640 → 20): 3 and 1.5 epochs
    scaled = replay_phases(recipe, theta0=THETA0, space=space, steps_per_epoch=spe(640), keep_absolute_steps=False)
    assert [p.steps for p in scaled] == [60, 30]
    kept = replay_phases(recipe, theta0=THETA0, space=space, steps_per_epoch=spe(640), keep_absolute_steps=True)
    assert [p.steps for p in kept] == [30, 15]
    assert scaled[1].hparams["learning_rate"] == 5e-4 and scaled[1].hparams["batch_size"] == 32  # carried over


def test_shipped_recipes_replay_on_any_scale(space):
    assert set(shipped_recipes()) >= {"practitioner", "capacity_guidebook", "ssmr_4phase"}
    ssmr = replay_phases(load_recipe(find_recipe("ssmr_4phase")), theta0=THETA0, space=space,
                         steps_per_epoch=spe(512), keep_absolute_steps=False)
    lr = [p.hparams["learning_rate"] for p in ssmr]
    kl = [p.hparams["kl_coef"] for p in ssmr]
    assert lr == pytest.approx([1e-3, 6e-4, 1e-3, 6e-4]) and kl == pytest.approx([0.001, 0.002, 0.001, 0.002])
    assert [p.hparams["temperature"] for p in ssmr] == [1.0, 1.1, 1.1, 1.0]
    assert ssmr[1].hparams["grad_clip"] == 0.5 and ssmr[2].hparams["clip_ratio_high"] == 0.3
    assert ssmr[3].hparams["response_length"] == 9  # 8 × 7168/6144, rounded
    assert [p.steps for p in ssmr] == [16] * 4  # one epoch each of 512 prompts at 32 per step
    guide = replay_phases(load_recipe(find_recipe("capacity_guidebook")), theta0=THETA0, space=space,
                          steps_per_epoch=spe(512), keep_absolute_steps=False)
    assert [(p.hparams["response_length"], p.hparams["rollouts"]) for p in guide] == [(8, 8), (12, 8), (16, 12)]
    assert all(p.hparams["learning_rate"] == 1e-3 for p in guide)  # capacity only
    practitioner = replay_phases(load_recipe(find_recipe("practitioner")), theta0=THETA0, space=space,
                                 steps_per_epoch=spe(512), keep_absolute_steps=False)
    assert len(practitioner) == 1 and practitioner[0].hparams == THETA0 and practitioner[0].steps is None


def test_a_recipe_file_path_becomes_overrides_hydra_can_take(tmp_path):
    path = tmp_path / "my strategy.yaml"
    path.write_text("name: shared-by-alice\nphases: [{epochs: 1}]\n")
    assert expand_recipe_path([f"recipe={path}", "task=arithmetic"]) == [
        "recipe=base_recipe", "recipe.name='shared-by-alice'", f"recipe.file='{path.resolve()}'", "task=arithmetic"]
    assert expand_recipe_path(["recipe=practitioner"]) == ["recipe=practitioner"]
    with pytest.raises(ConfigError, match="not a file"):
        expand_recipe_path([f"recipe={tmp_path}/missing.yaml"])


def test_the_paper_grid_is_eight_trials_around_theta0(space):
    trials = grid_trials(SweeperConfig().params("grid"), THETA0, space)
    assert [t.hparams["learning_rate"] for t in trials] == pytest.approx([2e-4, 2e-4, 6e-4, 6e-4, 1e-3, 1e-3, 2e-3, 2e-3])
    assert [t.hparams["lora_rank"] for t in trials] == [8, 16] * 4
    assert all(t.steps is None for t in trials)  # each runs θ0's epochs


def test_random_trials_follow_the_seed_and_the_paper_ranges(space):
    params = SweeperConfig().params("random")
    a = random_trials(params, THETA0, space, 8, seed=0)
    assert [t.hparams for t in a] == [t.hparams for t in random_trials(params, THETA0, space, 8, seed=0)]
    assert [t.hparams for t in a] != [t.hparams for t in random_trials(params, THETA0, space, 8, seed=1)]
    assert [t.hparams for t in random_trials(params, THETA0, space, 12, seed=0)][:8] == [t.hparams for t in a]
    for t in a:
        h = t.hparams
        assert 2e-4 <= h["learning_rate"] <= 2e-3 and 1e-5 <= h["kl_coef"] <= 1e-3 + 1e-12
        assert 0.6 <= h["temperature"] <= 1.2 and 0.15 <= h["clip_ratio_low"] <= 0.35
        assert h["batch_size"] in (16, 32, 64) and h["lora_rank"] in (2, 4, 8, 16) and h["rollouts"] in (6, 8, 12)
        assert h["epochs"] == pytest.approx(3.0) or h["epochs"] == pytest.approx(5.0)


def _paper_trials(task, mode, trials=8, seed=0):
    from omegaconf import OmegaConf
    from llmzero.app import root_hparams
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        c = compose(config_name="config", overrides=[f"task={task}", "model=qwen3_4b", "trainer=verl",
                                                     f"sweeper.mode={mode}"])
    space = HParamSpace.from_config(OmegaConf.to_container(c.search.space, resolve=True))
    sweeper = SweeperConfig(**{k: v for k, v in OmegaConf.to_container(c.sweeper).items()})
    theta0 = root_hparams(c, space)
    if mode == "grid":
        return c, theta0, grid_trials(sweeper.params("grid"), theta0, space)
    return c, theta0, random_trials(sweeper.params("random"), theta0, space, trials, seed)


@pytest.mark.parametrize("task,ranks", [("chemcot", [64, 128]), ("wildsci", [64, 128]),
                                        ("papersearchqa", [64, 128]), ("ssmr", [16, 32, 64, 128])])
def test_a_paper_task_runs_table_16s_grid_literally(task, ranks):
    c, theta0, trials = _paper_trials(task, "grid")
    lrs = [1e-5, 3e-5, 5e-5, 1e-4]
    assert [t.hparams["learning_rate"] for t in trials] == pytest.approx([lr for lr in lrs for _ in ranks])
    assert [t.hparams["lora_rank"] for t in trials] == ranks * len(lrs)
    # E.1: "Grid runs additionally use epochs=5 and response length=8192"; everything else is θ0
    assert all(t.hparams["epochs"] == 5.0 and t.hparams["response_length"] == 8192 for t in trials)
    untouched = set(theta0) - {"learning_rate", "lora_rank", "epochs", "response_length"}
    assert all(t.hparams[k] == theta0[k] for t in trials for k in untouched)
    # B.3 and B.6: 16 iterations, the early stopper every 900 s
    assert c.search.budget == 16 and c.search.early_stop.interval_s == 900 and c.search.early_stop.interval_steps is None
    assert c.search.max_steps_per_phase >= math.ceil(5000 / 64) * 5  # B.2's longest trial runs to completion


def test_a_paper_task_draws_b2s_ranges_with_one_clip_ratio():
    _, theta0, trials = _paper_trials("chemcot", "random", trials=64)
    assert theta0["learning_rate"] == 5e-5 and theta0["norm_adv_by_std"] is False  # §4.3.1's root
    for t in trials:
        h = t.hparams
        assert 1e-5 <= h["learning_rate"] <= 1e-4 and 1e-5 <= h["kl_coef"] <= 1e-3
        assert 0.6 <= h["temperature"] <= 1.2 and 0.15 <= h["clip_ratio_low"] <= 0.35
        assert h["clip_ratio_high"] == h["clip_ratio_low"]
        assert h["batch_size"] in (64, 128, 256) and h["lora_rank"] in (16, 32, 64, 128)
        assert h["rollouts"] in (6, 8, 12) and h["epochs"] in (3.0, 5.0)
        assert h["response_length"] == theta0["response_length"] and h["grad_clip"] == theta0["grad_clip"]
    lrs = sorted(t.hparams["learning_rate"] for t in trials)  # log-uniform: about half below the geometric middle
    assert 16 <= sum(lr < math.sqrt(1e-5 * 1e-4) for lr in lrs) <= 48


def test_the_embedded_task_keeps_the_theta0_relative_baselines_and_its_short_protocol():
    c = cfg()
    assert c.search.budget == 8 and c.search.early_stop.interval_steps == 10 and c.search.early_stop.interval_s is None
    assert c.sweeper.grid.learning_rate.relative and c.sweeper.random.learning_rate.relative


def test_same_as_must_name_a_drawn_parameter_of_its_sweep():
    with pytest.raises(ConfigError, match=r"sweeper.random.clip_ratio_high.same_as.*nope"):
        SweeperConfig(random={"clip_ratio_low": {"low": 0.1, "high": 0.2},
                              "clip_ratio_high": {"same_as": "nope"}})
    with pytest.raises(ConfigError, match="sweeper.grid.a.same_as"):
        SweeperConfig(grid={"a": {"same_as": "b"}, "b": {"same_as": "a"}})


def test_a_sweep_parameter_checks_itself():
    with pytest.raises(ConfigError, match="sweeper.grid.x.values"):
        SweepParam(low=0.1, high=1.0).check("sweeper.grid.x.values", "grid")
    with pytest.raises(ConfigError, match="when log is true"):
        SweepParam(low=0.0, high=1.0, log=True).check("sweeper.random.x", "random")


def test_grid_and_random_modes_run_static_trials_from_scratch(tmp_path):
    res = run(tmp_path / "grid", "sweeper.mode=grid", "sweeper.grid.learning_rate.values=[0.5,2.0]")
    nodes = list(res.tree)
    assert len(nodes) == 4 and nodes[0].kind == "root"
    assert all(n.kind == "scratch" and n.parent == 0 and n.resume_from is None for n in nodes[1:])
    # θ0 of the simulator: lr 1e-5, and the tiny model's LoRA rank 8
    assert [n.hparams["learning_rate"] for n in nodes] == pytest.approx([5e-6, 5e-6, 2e-5, 2e-5])
    assert [n.hparams["lora_rank"] for n in nodes] == [8, 16, 8, 16]
    assert all(n.status == "completed" and n.steps_done == n.max_steps for n in nodes)  # no early stop
    assert res.best.best_val == max(n.best_val for n in nodes)
    rnd = run(tmp_path / "random", "sweeper.mode=random", "sweeper.trials=3")
    assert len(rnd.tree) == 3 and "random" in rnd.tree[0].agent


def test_no_multistage_ablation_trains_every_phase_from_scratch(tmp_path):
    res = run(tmp_path / "abl", "search.ablation=no_multistage", "search.budget=5")
    assert len(res.tree) == 5
    assert all(n.resume_from is None and n.resume_step is None for n in res.tree)
    assert all(len(res.tree.strategy_path(n.id)) == 1 for n in res.tree)  # every strategy is a single phase
    assert all(n.kind in ("root", "scratch", "debug") for n in res.tree)


def test_a_trainer_step_cap_spends_exactly_the_budget(tmp_path):
    res = run(tmp_path / "cap", "search.budget=50", "search.max_trainer_steps=100")
    assert sum(n.steps_done for n in res.tree) == 100  # the last phase is cut to what is left
    assert res.stop_reason == "trainer-step cap reached (100 ≥ 100)"
