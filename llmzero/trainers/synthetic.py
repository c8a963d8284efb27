"""SyntheticTrainer: a SIMULATOR backend, not a trainer.

This is a test double and dry-run tool. No model is trained: each "phase" advances a tiny
latent state (skill, entropy, KL drift from the base model) with hand-written dynamics so
that metric curves react plausibly to the hyperparameters: plateaus at low learning rate,
KL blow-ups at high learning rate, entropy collapse at low temperature, truncation when
response_length is too short, OOM and NaN failures. It exists to exercise the search, the
agents and the early stopper end to end in seconds. Scores it produces say nothing about
how good a search strategy is on real models.

Determinism: every random draw comes from `random.Random` seeded by a hash of (trainer
seed, node id, phase seed, step), so the same spec gives the same metrics, and a phase
resumed from its own checkpoint replays exactly the steps it would have run.

Where it runs: start() runs a phase on a thread of the search process (seconds per search, what cluster=local
does); phase_command() runs the same phase as its own process (llmzero.trainers.synthetic_phase), which is how an
executor for other machines (cluster=ray) runs it. Either way a STOP file in the phase directory stops it.

On resume_own, records after the checkpoint step are dropped from metrics.jsonl and the new
handle's poll() returns the whole file from the start (the search may have lost its copy).
Hyperparameters arrive fully resolved from the search; the simulator holds no defaults of its own.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from ..atomic import read_json, write_json_atomic
from ..config.schema import SyntheticTrainerConfig, plain
from ..hparams.space import HParamSpace, HParamSpec
from ..hparams.steps import steps_per_epoch
from ..metrics import names
from ..metrics.store import MetricSeries, MetricsTail, append_record
from ..state.phase_dir import LOG_FILE, METRICS_FILE, log_tail, prepare_for_start, stop_request
from ..tree import PhaseStatus
from .base import PhaseCommand, PhaseResult, PhaseSpec, TrainerBase, checkpoint_dir, list_checkpoints, \
    mark_checkpoint_complete, require_hparams
from .subprocess_phase import write_phase_config

# What the simulated dynamics read; the search always sets them (conf/search/default.yaml).
USED = ("learning_rate", "kl_coef", "temperature", "clip_ratio_low", "clip_ratio_high", "grad_clip", "entropy_coef",
        "batch_size", "rollouts", "response_length", "norm_adv_by_std", "lora_rank")
NEEDED_LENGTH = {"arithmetic": 48}  # tokens a full solution needs; unknown tasks get 48
LR_OPT = 5e-5  # centre of the log-scale learning-rate bell
BASE_ENTROPY = 1.0
CEILING = 0.9
RATE = 0.1  # fraction of the remaining gap closed per step at the optimum


def _seed(*parts: Any) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big")


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return max(lo, min(hi, x))


def _lengths(response_length: int, need: float, kl: float) -> tuple[float, float]:
    """Mean length and truncated share; natural lengths ~ Normal(0.75 need, 0.15 need), inflated by KL (§4.3.1)."""
    mu = 0.75 * need * (1 + 0.3 * min(kl, 2.0))
    sd = 0.15 * need
    z = (response_length - mu) / sd
    trunc = 1 - 0.5 * (1 + math.erf(z / math.sqrt(2)))
    pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    mean = mu - (mu - response_length) * trunc - sd * pdf  # E[min(L, response_length)]
    return mean, trunc


def _zero_std_frac(s: float, rollouts: int, ent: float) -> float:
    # Prompts differ in difficulty; a group is uninformative when all its rollouts agree.
    ps = [_clamp(s + d, 0.01, 0.99) for d in (-0.3, -0.15, 0.0, 0.15, 0.3)]
    z = sum(p**rollouts + (1 - p) ** rollouts for p in ps) / len(ps)
    return z + (1 - z) * 0.8 * max(0.0, 0.3 - ent) / 0.3  # a collapsed policy answers every group alike


def _advance(st: dict[str, float], hp: dict[str, Any], need: float, rng: random.Random) -> dict[str, float]:
    """One simulated optimiser step: mutates the latent state, returns the train metrics."""
    lr, kc, temp = hp["learning_rate"], hp["kl_coef"], hp["temperature"]
    s, ent, kl = st["skill"], st["entropy"], st["kl"]
    f_lr = math.exp(-(math.log10(lr / LR_OPT) ** 2) / (2 * 0.5**2))
    mean_len, trunc = _lengths(hp["response_length"], need, kl)
    rank_cap = _clamp(0.96 + 0.02 * math.log2(max(hp["lora_rank"], 1) / 8), 0.85, 1.0)
    ceiling = CEILING * (1 - 0.45 * trunc) * rank_cap  # truncated answers cannot be right
    zsf = _zero_std_frac(s, hp["rollouts"], ent)
    signal = (1 - zsf) ** 0.5 * _clamp((hp["batch_size"] / 32) ** 0.15, 0.7, 1.3)
    signal *= 1.0 if hp["norm_adv_by_std"] else 0.9  # unscaled advantages: weaker signal on hard groups

    # KL: ordinary drift grows with lr, the penalty pulls back; past a critical lr it runs away.
    lr_crit = 1e-4 * (1 + min(1.0, kc / 1e-3)) * (1 + kc / 0.05) * _clamp(1 / hp["grad_clip"], 0.5, 3) ** 0.25
    excess = lr / lr_crit
    kl = kl + 0.004 * (lr / LR_OPT) / (1 + kc / 0.005) - min(0.5, 5 * kc) * kl
    if excess > 1:
        kl = kl * (1 + min(0.6, 0.15 * (excess - 1))) + 0.01 * (excess - 1)
    kl = max(0.0, min(kl, 12.0) * (1 + 0.05 * rng.gauss(0, 1)))

    # Entropy: sharpened by learning, faster at low temperature and weak KL anchoring.
    decay = 0.01 * (lr / LR_OPT) ** 0.7 * (1 / temp) ** 3 * (1 + 1 / (1 + kc / 5e-4))
    decay /= (1 + hp["entropy_coef"] / 0.005) * (hp["clip_ratio_high"] / 0.2) ** 0.5
    ent -= min(0.5, decay) * ent
    target = BASE_ENTROPY * temp**1.5 * (1 + 10 * hp["entropy_coef"])
    ent += max(0.0, target - ent) * (0.5 * hp["entropy_coef"] + 0.02 * max(0.0, temp - 1))
    if kl > 1:  # a blown-up policy babbles
        ent += 0.05 * (min(kl, 5) - 1)

    # Skill: approach the ceiling; stall when entropy collapsed; degrade after a KL spike.
    stall = min(1.0, (ent / 0.2) ** 2)
    gain = RATE * f_lr * signal * stall / (1 + kc / 0.05) * max(0.0, ceiling - s)
    s += gain * (1 + 0.3 * rng.gauss(0, 1))
    if s > ceiling:  # e.g. response_length shrunk: answers that no longer fit stop being rewarded
        s -= 0.1 * (s - ceiling) * min(1.0, f_lr + 0.2)
    if kl > 0.5:
        s -= 0.03 * min(kl, 5) * s
    if ent < 0.2:
        s -= 0.003 * (0.2 - ent) / 0.2
    s = _clamp(s, 0.01, 0.99)
    st.update(skill=s, entropy=min(ent, 3.0), kl=kl)

    p = _clamp(s + 0.03 + 0.08 * (1 - temp), 0.0, 1.0)  # sampling at temperature, on seen prompts
    n = hp["batch_size"] * hp["rollouts"]
    reward = _clamp(p + rng.gauss(0, math.sqrt(p * (1 - p) / n + 1e-6)))
    grad = 0.6 * (max(ceiling - s, 0.0) + 0.05) * min(1.0, lr / LR_OPT) ** 1.5 * signal
    grad += 0.3 * min(kl, 10) * (excess > 1)
    clip_eps = (hp["clip_ratio_low"] + hp["clip_ratio_high"]) / 2
    return {
        names.REWARD_MEAN: reward,
        names.REWARD_STD: math.sqrt(reward * (1 - reward)),
        names.KL: kl,
        names.ENTROPY: ent * (1 + 0.01 * rng.gauss(0, 1)),
        names.CLIP_RATIO: min(0.6, 0.03 * (lr / LR_OPT) * (0.2 / clip_eps) * (1 + kl)),
        names.GRAD_NORM: grad * (1 + 0.1 * abs(rng.gauss(0, 1))),
        names.RESPONSE_LENGTH: mean_len * (1 + 0.01 * rng.gauss(0, 1)),
        names.RESPONSE_CLIP_RATIO: trunc,
        names.ZERO_STD_FRAC: zsf,
        names.LR: lr,
        names.STEP_TIME: 0.2 + n * mean_len / 5e3,  # simulated seconds, not wall time
    }


def _scores(state: dict[str, Any], split: str, subtasks: list[str], noise: float) -> dict[str, float]:
    """Score a latent state; noise is keyed by the state's eval_key so re-scoring repeats it."""
    rng = random.Random(_seed(state["eval_key"], split))
    # Test generalises slightly worse, much worse once entropy collapses (paper §4.3.1 WildSci).
    gap = 0.0 if split == "val" else 0.02 + 0.15 * max(0.0, 0.3 - state["entropy"])
    k = len(subtasks)
    if not k:
        return {"score": _clamp(state["skill"] - gap + rng.gauss(0, noise))}
    offsets = [0.12 - 0.24 * i / (k - 1) for i in range(k)] if k > 1 else [0.0]
    sub = {t: _clamp(state["skill"] - gap + o + rng.gauss(0, noise * math.sqrt(k))) for t, o in zip(subtasks, offsets)}
    return {"score": sum(sub.values()) / k, **sub}


class SimulatedFailure(RuntimeError):
    """An OOM or NaN the simulator raises on purpose; its message is the phase's error."""


class SyntheticTrainer(TrainerBase):
    """SIMULATOR backend (see module docstring): a test double, not evidence of search quality."""

    can_evaluate = True

    def __init__(self, *, task: dict | None = None, model: dict | None = None, **options: Any) -> None:
        # Options and their defaults are the schema's (trainer=synthetic in conf/), written once there.
        self.options = dict(plain(options))  # what a phase process rebuilds this trainer from
        opts = SyntheticTrainerConfig(**self.options)
        self.name = opts.name
        self._extra = plain(opts.extra_hparams) or {}
        self.step_delay_s, self.memory_budget = float(opts.step_delay_s), float(opts.memory_budget)
        self.noise, self.seed = float(opts.noise), int(opts.seed)
        self.task = plain(task) or {}
        self.model = plain(model) or {}
        self.subtasks = [str(t) for t in self.task.get("subtasks") or []]
        self.need = float(NEEDED_LENGTH.get(str(self.task.get("name", "")), 48))
        # Bigger base models start stronger; the tiny model sits at 0.25.
        params_b = max(float(self.model.get("params_b") or 3e-4), 3e-4)
        self.base_skill = min(0.6, 0.25 + 0.04 * math.log10(params_b / 3e-4))

    def extra_hparams(self) -> dict[str, HParamSpec]:
        return dict(HParamSpace.from_config(self._extra).specs)

    def hparams(self, hparams: dict[str, Any]) -> dict[str, Any]:
        return require_hparams(hparams, USED, self.name)

    def check(self, hparams: dict[str, Any]) -> list[str]:
        hp, out = self.hparams(hparams), []
        if hp["rollouts"] < 2:
            out.append(f"rollouts={hp['rollouts']} is not allowed: GRPO needs at least 2 completions per prompt")
        if hp["batch_size"] * hp["rollouts"] < 2:
            out.append(f"batch_size={hp['batch_size']} with rollouts={hp['rollouts']} gives "
                       f"{hp['batch_size'] * hp['rollouts']} samples per step; batch_size*rollouts must be >= 2")
        return out

    def steps_per_epoch(self, hparams: dict[str, Any]) -> int:
        return steps_per_epoch(self.task["train_size"], self.hparams(hparams)["batch_size"])

    def base_state(self) -> dict[str, Any]:
        return {"skill": self.base_skill, "entropy": BASE_ENTROPY, "kl": 0.0, "trained_steps": 0,
                "step": 0, "eval_key": f"{self.seed}:base"}

    def start(self, spec: PhaseSpec) -> "SyntheticPhase":
        return SyntheticPhase(self, spec)

    def phase_command(self, spec: PhaseSpec) -> PhaseCommand:
        path = write_phase_config(spec, self.task, self.model, self.options)
        return PhaseCommand([sys.executable, "-m", "llmzero.trainers.synthetic_phase", str(path)], str(spec.dir),
                            env={"PYTHONUNBUFFERED": "1"})

    def evaluate(self, checkpoint_dir: str | Path | None, split: str = "val",
                 hparams: dict[str, Any] | None = None) -> dict[str, float] | None:
        if split not in ("val", "test"):
            return None
        state = self.base_state() if checkpoint_dir is None else read_json(Path(checkpoint_dir) / "state.json")
        return _scores(state, split, self.subtasks, self.noise)


class SyntheticPhase:
    """The running phase: a daemon thread writing metrics.jsonl, log.txt and checkpoints."""

    def __init__(self, trainer: SyntheticTrainer, spec: PhaseSpec, prepared: bool = False) -> None:
        """`prepared`: the phase directory was made ready by phase_command() (in the search process); leave its
        files alone and only find the checkpoint to continue from."""
        self.trainer, self.spec = trainer, spec
        self.hp = trainer.hparams(spec.hparams)
        self.dir = Path(spec.output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path, self.log_path = self.dir / METRICS_FILE, self.dir / LOG_FILE
        self._stop, self._kill, self._done = threading.Event(), threading.Event(), threading.Event()
        self._wake = threading.Event()  # interrupts the per-step sleep on stop or kill
        self.status, self.error, self.steps_done, self.stop_reason = "", None, 0, ""
        self._t0, self._t1 = time.time(), None
        self._tail = MetricsTail(self.metrics_path)
        self._thread = threading.Thread(target=self._main, name=f"synthetic-node{spec.node_id}", daemon=True)
        try:  # before the thread, so the first poll() never sees a stale file
            self._prepare_files(prepared)
        except Exception:
            self.status, self.error, self._t1 = PhaseStatus.FAILED, traceback.format_exc(), time.time()
            self._done.set()
            return
        self._thread.start()

    # -- PhaseHandle -----------------------------------------------------------------------
    def poll(self) -> list[dict[str, Any]]:
        return self._tail.poll()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the phase ends or `timeout` passes; whether it ended."""
        return self._done.wait(timeout)

    def stop(self, reason: str = "") -> None:
        self.stop_reason = reason
        self._stop.set()
        self._wake.set()

    def kill(self) -> None:
        self._kill.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def result(self) -> PhaseResult:
        series = MetricSeries.load(self.metrics_path)
        best_val, best_step = series.best_val()
        return PhaseResult(
            status=self.status, steps_done=self.steps_done, best_val=best_val, best_step=best_step,
            val_subscores=series.val_subscores(best_step), test_score=series.at_step(names.TEST_SCORE, best_step) if best_step else None,
            checkpoints=list_checkpoints(self.dir), error=self.error, log_tail=log_tail(self.log_path, 40),
            wall_s=(self._t1 or time.time()) - self._t0, gpu_s=0.0,
        )

    # -- the simulated training loop -------------------------------------------------------
    def _prepare_files(self, prepared: bool) -> None:
        if prepared:
            own = list_checkpoints(self.dir) if self.spec.resume_own else []
            self._resume_from = own[-1] if own else None
        else:
            self._resume_from = prepare_for_start(self.dir, self.spec.resume_own)

    def stop_requested(self) -> bool:
        """stop(), or a STOP file in the phase directory (how a stop reaches a phase on another machine)."""
        reason = None if self._stop.is_set() else stop_request(self.dir)
        if reason is not None:
            self.stop_reason = reason
            self._stop.set()
        return self._stop.is_set()

    def _log(self, line: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"[{time.strftime('%H:%M:%S')}] {line}\n")

    def _total_steps(self) -> int:
        if self.spec.max_steps < 1:
            raise SimulatedFailure(f"max_steps={self.spec.max_steps} is not allowed: a phase needs at least 1 step")
        return self.spec.max_steps

    def _main(self) -> None:
        try:
            self._run()
        except SimulatedFailure as exc:
            self.status, self.error = PhaseStatus.FAILED, str(exc)
            self._log(f"ERROR {exc}")
        except BaseException:  # a simulator bug must still end the phase as failed, never hang
            self.status, self.error = PhaseStatus.FAILED, traceback.format_exc()
            self._log("ERROR " + self.error)
        finally:
            self._t1 = time.time()
            self._done.set()

    def _run(self) -> None:
        sp, hp, t = self.spec, self.hp, self.trainer
        if self._resume_from is not None:
            state = read_json(checkpoint_dir(self.dir, self._resume_from) / "state.json")
            self._log(f"resuming own checkpoint step_{self._resume_from} (fresh optimiser)")
        elif sp.init_checkpoint:
            state = read_json(Path(sp.init_checkpoint) / "state.json")
            self._log(f"loaded weights from {sp.init_checkpoint} (fresh optimiser)")
        else:
            state = t.base_state()
            self._log(f"training from the base model {t.model.get('name', '?')}")
        start, total = self._resume_from or 0, self._total_steps()
        self.steps_done = start
        self._log(f"SIMULATED phase node={sp.node_id} steps {start + 1}..{total} hparams={json.dumps(hp, default=str)}")
        key = (t.seed, sp.node_id, sp.seed)
        nan_step = start + 2 + int(3 * 2e-3 / hp["learning_rate"]) if hp["learning_rate"] > 2e-3 else None
        last_saved = start
        for step in range(start + 1, total + 1):
            if self._kill.is_set():
                raise SimulatedFailure("killed")
            if self.stop_requested():
                break
            mem = hp["batch_size"] * hp["rollouts"] * hp["response_length"]
            if mem > t.memory_budget:
                raise SimulatedFailure(
                    f"torch.OutOfMemoryError: CUDA out of memory (simulated) at step {step}: "
                    f"batch_size={hp['batch_size']}, rollouts={hp['rollouts']}, "
                    f"response_length={hp['response_length']} needs {mem:g} > budget {t.memory_budget:g}")
            if nan_step is not None and step >= nan_step:
                raise SimulatedFailure(f"loss became NaN at step {step} (simulated): learning_rate="
                                       f"{hp['learning_rate']:g} > 2e-3 diverged")
            gstep = sp.global_offset + step
            rec: dict[str, Any] = {names.STEP: step, names.GLOBAL_STEP: gstep}
            rec.update(_advance(state, hp, t.need, random.Random(_seed(*key, "step", step))))
            state.update(trained_steps=int(state.get("trained_steps", 0)) + 1, step=step,
                         eval_key=f"{t.seed}:{sp.node_id}:{sp.seed}:{step}")
            self._log(f"step {step}/{total} global={gstep} reward={rec[names.REWARD_MEAN]:.3f} kl={rec[names.KL]:.4g} "
                      f"entropy={rec[names.ENTROPY]:.3f} grad_norm={rec[names.GRAD_NORM]:.4g} "
                      f"resp_len={rec[names.RESPONSE_LENGTH]:.1f} trunc={rec[names.RESPONSE_CLIP_RATIO]:.2f}")
            if step % max(1, sp.eval_every) == 0 or step == total:
                val = _scores(state, "val", t.subtasks, t.noise)
                rec[names.VAL_SCORE] = val.pop("score")
                rec.update({names.VAL_PREFIX + k: v for k, v in val.items()})
                rec[names.TEST_SCORE] = _scores(state, "test", t.subtasks, t.noise)["score"]
                state["val_score"] = rec[names.VAL_SCORE]
                self._log(f"eval step {step}: val/score={rec[names.VAL_SCORE]:.4f} test/score={rec[names.TEST_SCORE]:.4f}")
            append_record(self.metrics_path, rec)
            self.steps_done = step
            if step % max(1, sp.save_every) == 0 or step == total:
                self._save(state, step)
                last_saved = step
            if t.step_delay_s > 0:
                self._wake.wait(t.step_delay_s)
        if self._stop.is_set() and self.steps_done < total:
            if self.steps_done > last_saved:
                self._save(state, self.steps_done)
            self.status = PhaseStatus.EARLY_STOPPED
            self._log(f"stopped at step {self.steps_done}: {self.stop_reason or 'stop requested'}")
        else:
            self.status = PhaseStatus.COMPLETED
            self._log(f"completed {self.steps_done} steps")

    def _save(self, state: dict[str, Any], step: int) -> None:
        path = checkpoint_dir(self.dir, step)
        path.mkdir(parents=True, exist_ok=True)
        (path / "COMPLETE").unlink(missing_ok=True)
        write_json_atomic(path / "state.json", {**state, "step": step, "node_id": self.spec.node_id,
                                                "hparams": self.hp, "simulated": True})
        mark_checkpoint_complete(path)
        self._log(f"saved checkpoint checkpoints/step_{step}")
