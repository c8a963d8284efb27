"""A synthetic search leaves plots, W&B offline runs and the report behind (the TRL one: test_app.py)."""

import os

from hydra import compose, initialize_config_dir
from rich.console import Console

from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from outputs_check import check_search_outputs


def test_synthetic_search_writes_plots_wandb_runs_and_report(tmp_path):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=[
            "trainer=synthetic", "trainer.step_delay_s=0.01", "search.budget=6", "search.display=false",
            "cluster.poll_interval_s=0.01", "wandb.mode=offline"])
    run_search(cfg, tmp_path / "run", Console(file=open(os.devnull, "w")))
    assert all((tmp_path / "run" / f).is_file() for f in ("report.html", "report.md", "plots/tree.png",
                                                           "plots/strategy.png"))
    check_search_outputs(tmp_path / "run")


def test_bad_wandb_mode_is_a_config_error():
    """wandb.mode is an Enum field: the composition refuses another value, and so does the settings object."""
    import pytest
    from hydra.errors import ConfigCompositionException

    from llmzero.config.schema import ConfigError, WandbConfig, WandbMode

    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        with pytest.raises(ConfigCompositionException) as err:
            compose(config_name="config", overrides=["trainer=synthetic", "wandb.mode=cloud"])
    assert "Invalid value 'cloud', expected one of [offline, online, disabled]" in str(err.value.__cause__)
    with pytest.raises(ConfigError, match=r"wandb.mode='cloud' is not valid: expected one of \['offline', 'online', 'disabled'\]"):
        WandbConfig(mode="cloud")
    assert WandbConfig(mode="online").mode is WandbMode.online and WandbConfig().mode == "offline"
