"""Each default is written once: in the structured-config schema (settings) or in conf/search/default.yaml's
space (hyperparameters). Backends fill in nothing themselves, and presets hold only what differs."""

import dataclasses
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import MISSING, OmegaConf

from llmzero.app import build_space, root_hparams
from llmzero.config import schema
from llmzero.config.ray_cluster import RayClusterConfig
from llmzero.config.verl_trainer import VerlTrainerConfig
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.search.early_stop import StopSchedule
from llmzero.config.dataset_task import DatasetTaskConfig
from llmzero.search.settings import SearchSettings

BASES = {"base_task": schema.TaskConfig, "base_model": schema.ModelConfig, "base_synthetic": schema.SyntheticTrainerConfig,
         "base_trl": schema.TRLTrainerConfig, "base_heuristic": schema.HeuristicAgentConfig,
         "base_claude": schema.ClaudeAgentConfig, "base_litellm": schema.LiteLLMAgentConfig,
         "base_cluster": schema.ClusterConfig, "base_ray": RayClusterConfig, "base_search": schema.SearchConfig,
         "base_verl": VerlTrainerConfig, "base_dataset_task": DatasetTaskConfig}
PRESETS = sorted(Path(conf_dir()).glob("*/*.yaml"))


def compose_cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def _repeats(raw: dict, cls: type, where: str) -> list[str]:
    out = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            continue
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            out += _repeats(value or {}, f.default_factory, f"{where}.{key}")
        elif f.default is not dataclasses.MISSING and f.default is not MISSING and f.default == value:
            out.append(f"{where}.{key}={value!r}")
    return out


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_presets_do_not_repeat_schema_defaults(preset):
    raw = yaml.safe_load(preset.read_text()) or {}
    bases = [b for b in raw.get("defaults", []) if isinstance(b, str) and b in BASES]
    assert bases, f"{preset} names no schema in its defaults list"
    assert _repeats(raw, BASES[bases[0]], preset.parent.name) == []


@pytest.mark.parametrize("trainer", ["synthetic", "trl"])
def test_backends_train_with_the_resolved_root_configuration_and_fill_in_nothing(trainer):
    cfg = compose_cfg(f"trainer={trainer}")
    backend = instantiate(cfg.trainer, task=OmegaConf.to_container(cfg.task), model=OmegaConf.to_container(cfg.model),
                          _convert_="all", _recursive_=False)
    space = build_space(cfg, backend)
    theta0 = root_hparams(cfg, space)
    defaults = yaml.safe_load((Path(conf_dir()) / "search" / "default.yaml").read_text())["space"]
    assert set(theta0) == set(defaults)  # every key resolved by the search, from the space
    for layer in (cfg.task.hparams, cfg.model.hparams, cfg.trainer.hparams):
        for key, value in layer.items():
            defaults[key]["default"] = value
    assert theta0 == {k: spec["default"] for k, spec in defaults.items()}
    assert backend.check(theta0) == []
    for key in ("batch_size", "rollouts", "learning_rate", "response_length", "lora_rank"):
        partial = {k: v for k, v in theta0.items() if k != key}
        try:
            problems = backend.check(partial)
        except ValueError as exc:
            problems = [str(exc)]
        assert any(key in p for p in problems), f"{trainer} accepted a configuration without {key}"


def test_trainer_options_default_to_the_schema():
    from llmzero.trainers.synthetic import SyntheticTrainer
    from llmzero.trainers.trl.backend import TRLTrainer, options_from

    trl = TRLTrainer(task={"train_size": 8}, model={"path": "builtin:tiny"})
    opts, passthrough = options_from(trl.options())  # what the phase and evaluation processes rebuild
    assert opts == schema.TRLTrainerConfig() and passthrough == []
    assert opts.eval_batch_size == schema.TRLTrainerConfig.eval_batch_size
    syn = SyntheticTrainer(task={"train_size": 8}, model={})
    assert (syn.step_delay_s, syn.memory_budget, syn.noise) == (
        schema.SyntheticTrainerConfig.step_delay_s, schema.SyntheticTrainerConfig.memory_budget,
        schema.SyntheticTrainerConfig.noise)


def test_search_settings_are_the_schema_built_from_the_config():
    cfg = compose_cfg("trainer=synthetic", "search.early_stop.min_evals=4", "search.uct.c=2.0")
    s = SearchSettings.from_config(cfg)
    assert isinstance(s.search, schema.SearchConfig) and isinstance(s.search.uct, schema.UCTParams)
    assert s.search.early_stop.min_evals == 4 and s.search.uct.c == 2.0
    assert s.search.uct.temperature == schema.UCTParams.temperature
    assert s.eval_every == cfg.trainer.eval_every and s.cluster.max_concurrent == cfg.cluster.max_concurrent
    assert StopSchedule().config == schema.EarlyStopConfig()  # the stopper's default is the schema's
    plain = OmegaConf.create(OmegaConf.to_yaml(cfg))  # a resumed search reads plain YAML back
    assert SearchSettings.from_config(plain) == s


@pytest.mark.parametrize("override, message", [
    ("search.budget=0", "search.budget=0 is not valid: expected an int ≥ 1"),
    ("search.uct.temperature=0", "search.uct.temperature=0.0 is not valid"),
    ("search.uct.c=-1", "search.uct.c=-1.0 is not valid"),
    ("search.limits.max_evolve_children=0", "search.limits.max_evolve_children=0 is not valid"),
    ("search.early_stop.interval_steps=0", "search.early_stop.interval_steps=0 is not valid"),
    ("search.early_stop.min_evals=-1", "search.early_stop.min_evals=-1 is not valid"),
    ("search.max_gpu_hours=-1", "search.max_gpu_hours=-1.0 is not valid"),
    ("cluster.poll_interval_s=-1", "cluster.poll_interval_s=-1.0 is not valid"),
    ("trainer.eval_every=0", "trainer.eval_every=0 is not valid"),
])
def test_settings_check_themselves(override, message):
    with pytest.raises(schema.ConfigError) as err:
        SearchSettings.from_config(compose_cfg("trainer=synthetic", override))
    assert message in str(err.value)
