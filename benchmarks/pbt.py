"""Population-based training (Jaderberg et al. 2017) with Ray Tune, over the same trainer phases as the search:
what a user would pick instead of LLMZero, run on the same trainer, task, model and step budget.

Each member of the population is a Ray Tune function trainable that trains in chunks of `--interval` steps, each
chunk one phase of the configured trainer (`trainer.start(spec)`, the same call the search makes) started from the
member's last adapter checkpoint; after each chunk it reports the validation score with that checkpoint. Ray Tune's
PopulationBasedTraining then lets a weak member copy a strong one's checkpoint and configuration (exploit) and
perturbs the copied regularisation hyperparameters (explore). The initial population is drawn from the random
baseline's ranges (sweeper.random, paper Appendix B.2), so PBT starts where random search does.

One difference from textbook PBT, stated rather than hidden: a checkpoint here is the LoRA adapter only, so every
chunk starts with a fresh optimizer, as our phases do; PBT as published restores the whole training state,
optimizer included.

    .venv/bin/python benchmarks/pbt.py                                  # tiny TRL model, 4 members x 48 steps
    .venv/bin/python benchmarks/pbt.py trainer=synthetic --population 4 --steps 48 --interval 16
    .venv/bin/python benchmarks/pbt.py task=<task> model=<model> --out runs/pbt

Prints the best member's validation score, its test score at that checkpoint and the steps used, and writes them
to <out>/pbt.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from llmzero.app import build_space, root_hparams
from llmzero.config.hydra_store import register_configs
from llmzero.config.strategies import SweeperConfig
from llmzero.executors.phase_job import run_to_end
from llmzero.paths import conf_dir
from llmzero.metrics import names
from llmzero.metrics.store import MetricSeries
from llmzero.state.phase_dir import METRICS_FILE, checkpoint_dir, list_checkpoints
from llmzero.strategy.static import random_trials
from llmzero.trainers.base import PhaseSpec
from llmzero.trainers.factory import trainer_from_config

CHUNK_FILE = "chunk.json"  # the configuration a chunk ran with, and the member's step when it began
MUTATED = ("learning_rate", "kl_coef", "temperature", "clip_ratio_low", "clip_ratio_high")  # regularisation only:
# capacity and lora_rank stay with the checkpoint a member copies (an adapter's shape cannot change)


def compose_config(overrides: list[str]) -> Any:
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=overrides)


def _clamped(hparams: dict[str, Any], space: Any) -> dict[str, Any]:
    """PBT multiplies by 0.8 or 1.2, which can leave the space after a few rounds: keep each value in its bounds, and
    the clip ratios in order."""
    out = dict(hparams)
    for key in MUTATED:
        spec = space.specs.get(key)
        if spec is not None and key in out:
            low = spec.low if spec.low is not None else out[key]
            high = spec.high if spec.high is not None else out[key]
            out[key] = min(max(float(out[key]), low), high)
    if "clip_ratio_low" in out and "clip_ratio_high" in out:  # perturbed apart, they may cross: the space refuses it
        out["clip_ratio_high"] = max(float(out["clip_ratio_high"]), float(out["clip_ratio_low"]))
    return space.validate(out, where="pbt member")


def member(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """One member of the population: chunks of phases, each reported to Tune with its adapter checkpoint."""
    from ray import tune

    cfg = OmegaConf.create(setup["cfg"])
    trainer = trainer_from_config(cfg)
    space = build_space(cfg, trainer)
    hparams = _clamped({**setup["theta0"], **config}, space)
    step, init = 0, None
    found = tune.get_checkpoint()
    if found is not None:
        held = Path(tempfile.mkdtemp(prefix="pbt-restore-"))
        found.to_directory(str(held))
        step = int(json.loads((held / "state.json").read_text())["step"])
        init = str(held / "adapter")
    trial_dir = Path(tune.get_context().get_trial_dir())
    interval, total = int(setup["interval"]), int(setup["steps"])
    while step < total:
        length = min(interval, total - step)
        out = trial_dir / f"chunk_{step}_{int(time.time() * 1000)}"
        spec = PhaseSpec(node_id=0, hparams=hparams, output_dir=str(out), max_steps=length, init_checkpoint=init,
                         eval_every=int(cfg.trainer.eval_every), save_every=length, seed=int(cfg.search.seed),
                         global_offset=step)
        out.mkdir(parents=True, exist_ok=True)
        (out / CHUNK_FILE).write_text(json.dumps({"step": step, "hparams": hparams}))
        result = run_to_end(trainer, spec)
        if result.status == "failed" or length not in result.checkpoints:
            raise RuntimeError(f"PBT chunk at step {step} failed: {result.error}")
        step += length
        init = str(checkpoint_dir(out, length))
        pack = Path(tempfile.mkdtemp(prefix="pbt-ckpt-"))
        shutil.copytree(init, pack / "adapter")
        (pack / "state.json").write_text(json.dumps({"step": step, "hparams": hparams}))
        last_val = _last_val(out)
        tune.report({"val": last_val, "step": step, "chunk_dir": str(out)},
                    checkpoint=tune.Checkpoint.from_directory(str(pack)))


def _last_val(phase_dir: Path) -> float:
    """The score PBT compares members by: validation at the chunk's last evaluation (its checkpoint's)."""
    values = MetricSeries.load(phase_dir / METRICS_FILE).series(names.VAL_SCORE)
    return float(values[-1][1]) if values else 0.0


def run_pbt(overrides: list[str], out_dir: Path, population: int, steps: int, interval: int, seed: int = 0,
            cpus: int | None = None) -> dict[str, Any]:
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    cfg = compose_config(overrides)
    trainer = trainer_from_config(cfg)
    trainer.prepare(print)
    space = build_space(cfg, trainer)
    theta0 = root_hparams(cfg, space)
    sweeper = SweeperConfig(**OmegaConf.to_container(cfg.sweeper, resolve=True))
    random_params = {k: v for k, v in sweeper.params("random").items() if k != "epochs"}
    starts = [t.hparams for t in random_trials(random_params, theta0, space, population, seed)]
    mutations = {}
    for key in MUTATED:
        param = random_params.get(key)
        if param is None:
            continue
        if param.same_as is not None:  # a shared draw at the start; Tune perturbs each key on its own range
            param = random_params[param.same_as]
        base = theta0[key] if param.relative else 1.0
        if param.values is not None:
            mutations[key] = [base * v for v in param.values]
        elif param.log:
            mutations[key] = tune.loguniform(base * param.low, base * param.high)
        else:
            mutations[key] = tune.uniform(base * param.low, base * param.high)
    scheduler = PopulationBasedTraining(time_attr="step", perturbation_interval=interval,
                                        hyperparam_mutations=mutations, metric="val", mode="max",
                                        synch=True)  # every member decides at the same step: equal compute
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    setup = {"cfg": OmegaConf.to_container(cfg, resolve=True), "theta0": theta0, "interval": interval,
             "steps": steps}
    # each member a distinct start: Tune's grid_search over the indices, the configuration taken from the list
    param_space = {k: tune.sample_from(lambda spec, k=k: starts[spec.config["member"]][k]) for k in starts[0]}
    param_space["member"] = tune.grid_search(list(range(population)))
    started = time.time()
    ray.init(num_cpus=cpus, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_member_entry, setup=setup), {"cpu": 1}),
            param_space=param_space,
            tune_config=tune.TuneConfig(scheduler=scheduler, num_samples=1),
            run_config=tune.RunConfig(name="pbt", storage_path=str(out_dir / "ray"), verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    wall = time.time() - started
    best_val, best_dir = None, None
    for res in grid:
        frame = res.metrics_dataframe
        if frame is None or frame.empty:
            continue
        row = frame.loc[frame["val"].idxmax()]
        if best_val is None or row["val"] > best_val:
            best_val, best_dir = float(row["val"]), str(row["chunk_dir"])
    test = None
    if best_dir is not None and trainer.can_evaluate:  # test at the checkpoint with the best validation report
        chunk = json.loads((Path(best_dir) / CHUNK_FILE).read_text())
        ckpt = list_checkpoints(best_dir)[-1]
        scores = trainer.evaluate(str(checkpoint_dir(best_dir, ckpt)), "test", chunk["hparams"])
        test = (scores or {}).get("score")
    summary = {"method": "pbt", "population": population, "steps_per_member": steps, "interval": interval,
               "steps_used": population * steps, "best_val": best_val, "test": test, "wall_s": wall,
               "errors": sum(1 for r in grid if r.error is not None)}
    (out_dir / "pbt.json").write_text(json.dumps(summary, indent=2))
    return summary


def _member_entry(config: dict[str, Any], setup: dict[str, Any]) -> None:
    member({k: v for k, v in config.items() if k != "member"}, setup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="llmzero config overrides (trainer=, task=, model=, hparams.*)")
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--steps", type=int, default=48, help="steps each member trains")
    parser.add_argument("--interval", type=int, default=16, help="steps between PBT's exploit/explore decisions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/pbt"))
    args = parser.parse_args(argv)
    summary = run_pbt(list(args.overrides), args.out, args.population, args.steps, args.interval, args.seed, args.cpus)
    print(json.dumps(summary, indent=2))
    return 0 if summary["best_val"] is not None else 1


if __name__ == "__main__":
    sys.exit(main())
