"""The offline rule-based agent: proposer, early stopper and error analyzer without a network.

It follows the diagnosis patterns of the paper's best strategies (§4.3, detection in
llmzero.agents.diagnosis) and turns every pattern that fires into one coordinated,
multi-parameter transition:

    kl_spike          kl_coef x2 (x5 when severe), learning_rate x0.5
    plateau           learning_rate x2, kl_coef x2, temperature +0.1
                      (+ batch_size x0.5 when grad_norm is low, batch_size >= 16, no KL spike)
    entropy_collapse  temperature +0.2, kl_coef x0.5, clip_ratio_high +0.08
    truncation        response_length x1.5 (x2 when > 30% are cut)
    zero_variance     rollouts x2
    healthy           same config; epochs x1.5 while improving, else learning_rate x0.7

Per hyperparameter, same-direction moves keep the strongest; opposite moves are settled by
diagnosis.PRIORITY (stabilise before accelerating). Capacity parameters never decrease along a
path: that is our rule for this agent, taken from what §4.3.2 observed; the LLM agents' prompts carry no such
rule (Appendix G), so with them the asymmetry can only emerge. Parameters fixed along a path (lora_rank) never change, every value is clamped to its
bounds and coerced to its type. The same agent is the fallback when an LLM agent fails.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any, Mapping

from ..hparams.space import CAPACITY, HParamSpace
from ..hparams.steps import steps_for_epochs
from ..metrics import names
from ..metrics.stop_evidence import StopEvidence, best_until, gather, judge
from ..metrics.summary import summarise_curve
from ..tree import Node
from .base import AgentBase, ErrorContext, ErrorFix, Proposal, ProposalContext, StopContext, StopDecision
from .diagnosis import (ENTROPY_COLLAPSE, KL_SPIKE, PLATEAU, PRIORITY, TRUNCATION, ZERO_VARIANCE, Diagnosis,
                        Thresholds, diagnose, non_finite)

KL_ON = 1e-3  # kl_coef used when raising a zero penalty
KL_LADDER = (0.0005, 0.001, 0.002, 0.005, 0.01)  # from-scratch choices
COLLAPSE_ABS, COLLAPSE_REL = 0.05, 0.25  # val drop from its best that counts as a collapse
OOM_RE = re.compile(r"out of memory|outofmemory|\boom\b|memoryerror|cannot allocate memory", re.I)
NAN_RE = re.compile(r"\b(nan|non-finite|not finite|infinite|inf)\b", re.I)
EXC_LINE_RE = re.compile(r"\b[\w.]*(Error|Exception)\b\s*:")  # "FileNotFoundError: ..."
DIVERGENCE_KEYS = ("loss", names.KL, names.GRAD_NORM, names.REWARD_MEAN, names.ENTROPY, names.VAL_SCORE)
ERROR_LINE_RE = re.compile(r"error|exception|failed|fatal|killed", re.I)


def fit_value(space: HParamSpace, key: str, value: Any) -> Any:
    """Clamp a numeric value into the spec's bounds and coerce it to the spec's type."""
    spec = space.specs[key]
    if spec.type in ("int", "float"):
        x = float(value)
        if spec.low is not None:
            x = max(x, float(spec.low))
        if spec.high is not None:
            x = min(x, float(spec.high))
        if spec.type == "int":
            lo = math.ceil(spec.low) if spec.low is not None else -math.inf
            hi = math.floor(spec.high) if spec.high is not None else math.inf
            value = int(min(max(round(x), lo), hi))
        else:
            value = min(max(float(f"{x:.6g}"), spec.low if spec.low is not None else -math.inf),
                        spec.high if spec.high is not None else math.inf)
    return spec.coerce(key, value)


def current_hparams(space: HParamSpace, hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The space's defaults overlaid with a node's own values (keys of the space only)."""
    out = space.defaults()
    out.update({k: v for k, v in hparams.items() if k in space.specs})
    return out


def choose_resume(best_step: int | None, checkpoints: list[int]) -> int | None:
    """The best-val step if checkpointed, else the nearest checkpoint before it, else the latest."""
    if not checkpoints:
        return None
    ckpts = sorted(checkpoints)
    if best_step is not None:
        if best_step in ckpts:
            return best_step
        earlier = [c for c in ckpts if c <= best_step]
        if earlier:
            return earlier[-1]
    return ckpts[-1]


def phase_max_steps(epochs: float, steps_per_epoch: int, cap: int, parent_batch: Any = None,
                    new_batch: Any = None) -> int:
    """max_steps = min(cap, max(1, round(epochs * steps_per_epoch))); steps_per_epoch is rescaled
    by parent_batch / new_batch when the batch size changes (it was computed for the parent's)."""
    spe = float(steps_per_epoch)
    if parent_batch and new_batch and parent_batch != new_batch:
        spe *= float(parent_batch) / float(new_batch)
    return int(min(cap, steps_for_epochs(epochs, spe)))


def _first_error_line(*texts: str) -> str:
    lines = [ln.strip() for t in texts for ln in (t or "").splitlines() if ln.strip()]
    for pattern in (EXC_LINE_RE, ERROR_LINE_RE):
        for ln in lines:
            if pattern.search(ln) and not ln.startswith("Traceback"):
                return ln[:300]
    return lines[0][:300] if lines else "(no error text)"


class HeuristicAgent(AgentBase):
    """Rule-based proposer / early stopper / error analyzer (no network, deterministic)."""

    def __init__(self, name: str = "heuristic", seed: int = 0, thresholds: Thresholds | None = None, **kwargs: Any):
        self.name = name
        self.seed = int(seed)
        self.thresholds = thresholds or Thresholds()
        self.options = dict(kwargs)  # unknown config keys are accepted and ignored

    # ---- proposer (§3.4) -------------------------------------------------------------------
    def propose(self, ctx: ProposalContext) -> Proposal:
        if ctx.parent is None:
            return Proposal(changes={}, diagnosis="default configuration θ0",
                            rationale="Root phase: the default configuration is trained as is.", agent=self.name)
        space, parent = ctx.space, ctx.parent
        cur = current_hparams(space, parent.hparams)
        diag = diagnose(ctx.parent_metrics, self.thresholds)
        moves, reasons = self._pattern_moves(diag, cur)
        changes, notes = self._combine(space, cur, moves)
        epochs_parent = float(cur.get("epochs", 1.0) or 1.0)
        epochs = epochs_parent * 1.5 if diag.improving else epochs_parent
        if "epochs" in space.specs:
            epochs = max(fit_value(space, "epochs", epochs), epochs_parent)
            if epochs != cur.get("epochs"):
                changes["epochs"] = epochs
        if ctx.scratch:
            start = self._scratch_start(space, cur, parent, ctx.node_id)
            changes.update(start)
            changes = {k: v for k, v in changes.items() if v != cur.get(k)}
            resume = None
            moved = ", ".join(f"{k} {cur[k]:g}->{v:g}" for k, v in start.items() if v != cur.get(k))
            ckpt_note = (f"From scratch (checkpoint information withheld, §3.3): a different starting point ({moved}), "
                         f"drawn deterministically from seed {self.seed}, parent {parent.id} and node {ctx.node_id}, keeping the best path's "
                         f"capacity settings; the pattern fixes above apply where not overridden.")
        else:
            best_step = parent.best_step if parent.best_step is not None else ctx.parent_metrics.best_val()[1]
            resume = choose_resume(best_step, list(ctx.parent_checkpoints))
            ckpt_note = (f"Resume from step {resume} (best val/score at step {best_step}; "
                         f"checkpoints {sorted(ctx.parent_checkpoints)})." if resume is not None
                         else "No parent checkpoint is available, so the phase starts from the base model.")
            varied = self._diversify(space, cur, changes, ctx)
            if varied:
                ckpt_note += " " + varied
        batch_new = changes.get("batch_size", cur.get("batch_size"))
        max_steps = phase_max_steps(epochs, ctx.steps_per_epoch, ctx.max_steps_cap, cur.get("batch_size"), batch_new)
        budget = (f"Epoch budget {epochs:g} ({'more, as val/score is still improving' if diag.improving else 'as the parent'})"
                  f" x {ctx.steps_per_epoch} steps/epoch"
                  + (f" rescaled by batch {cur.get('batch_size')}->{batch_new}" if batch_new != cur.get("batch_size") else "")
                  + f" -> max_steps {max_steps} (cap {ctx.max_steps_cap}).")
        rationale = " ".join(reasons + notes + [ckpt_note, budget])
        return Proposal(changes=changes, diagnosis=diag.sentence(), rationale=rationale,
                        observations=diag.all_observations(), resume_step=resume, max_steps=max_steps,
                        epochs=float(epochs), agent=self.name)

    def _pattern_moves(self, diag: Diagnosis, cur: dict[str, Any]) -> tuple[dict[str, list[tuple[str, float]]], list[str]]:
        moves: dict[str, list[tuple[str, float]]] = {}
        reasons: list[str] = []

        def move(pattern: str, key: str, value: float) -> None:
            if key in cur and isinstance(cur[key], (int, float)) and not isinstance(cur[key], bool):
                moves.setdefault(key, []).append((pattern, value))

        lr, kl = float(cur.get("learning_rate", 0) or 0), float(cur.get("kl_coef", 0) or 0)
        temp = float(cur.get("temperature", 1.0) or 1.0)
        f = diag.findings
        if KL_SPIKE in f:
            factor = 5.0 if f[KL_SPIKE].data["severe"] else 2.0
            move(KL_SPIKE, "kl_coef", max(kl * factor, KL_ON))
            move(KL_SPIKE, "learning_rate", lr * 0.5)
            reasons.append(f"The policy is drifting from the reference faster than the penalty holds it (KL is a leading "
                           f"indicator of validation degradation, §4.3.1): raise kl_coef x{factor:g} and halve "
                           f"learning_rate together so the stronger penalty is not fought by oversized steps.")
        if ENTROPY_COLLAPSE in f:
            move(ENTROPY_COLLAPSE, "temperature", temp + 0.2)
            move(ENTROPY_COLLAPSE, "kl_coef", kl * 0.5)
            move(ENTROPY_COLLAPSE, "clip_ratio_high", float(cur.get("clip_ratio_high", 0.2) or 0.2) + 0.08)
            reasons.append("Exploration has collapsed (validation can keep rising while the hidden test score drops, "
                           "§4.3.1): raise temperature +0.2 and widen clip_ratio_high +0.08 so low-probability tokens "
                           "can gain mass, and relax kl_coef x0.5 so the penalty stops pinning the policy.")
        if TRUNCATION in f:
            factor = 2.0 if f[TRUNCATION].data["severe"] else 1.5
            move(TRUNCATION, "response_length", float(cur.get("response_length", 0) or 0) * factor)
            reasons.append(f"Truncated responses get no credit for their reasoning: raise response_length x{factor:g}.")
        if ZERO_VARIANCE in f:
            rollouts = float(cur.get("rollouts", 0) or 0)
            cap = self.thresholds.max_auto_rollouts
            if rollouts * 2 <= cap:
                move(ZERO_VARIANCE, "rollouts", rollouts * 2)
                reasons.append("Groups with identical rewards have zero advantage and contribute no gradient: double "
                               "rollouts so more groups contain both successes and failures.")
            else:
                # Prompts that are always solved or never solved stay zero-variance at any group size;
                # doubling again would double the cost of every later step for little signal.
                reasons.append(f"Many groups have identical rewards, but rollouts ({rollouts:g}) is already at the "
                               f"heuristic's cost cap ({cap}); not raising it further.")
        if PLATEAU in f:
            move(PLATEAU, "learning_rate", lr * 2.0)
            move(PLATEAU, "kl_coef", max(kl * 2.0, KL_ON))
            move(PLATEAU, "temperature", temp + 0.1)
            text = ("Validation is stuck with weak updates: double learning_rate to escape the plateau while "
                    "doubling kl_coef to prevent the divergence a larger step invites (ChemCoT phase 5, §4.3.2), "
                    "and loosen temperature +0.1 for more diverse rollouts.")
            if f[PLATEAU].data["low_grad_norm"] and KL_SPIKE not in f and float(cur.get("batch_size", 0) or 0) >= 16:
                move(PLATEAU, "batch_size", float(cur["batch_size"]) * 0.5)
                text += " Halve batch_size for more, noisier updates per epoch (PaperSearchQA phase 4)."
            reasons.append(text)
        if not f:
            if diag.improving:
                reasons.append("Training is healthy and val/score is still improving: keep the configuration and "
                               "extend the epoch budget.")
            elif diag.val is not None:
                move("converge", "learning_rate", lr * 0.7)
                reasons.append("Training is healthy but val/score has levelled off with active updates: lower "
                               "learning_rate x0.7 to converge.")
            else:
                reasons.append("No validation signal to act on: continue the same configuration.")
        return moves, reasons

    def _combine(self, space: HParamSpace, cur: dict[str, Any], moves: dict[str, list[tuple[str, float]]]
                 ) -> tuple[dict[str, Any], list[str]]:
        changes: dict[str, Any] = {}
        notes: list[str] = []
        rank = {p: i for i, p in enumerate(PRIORITY)}
        for key, cands in moves.items():
            spec = space.specs.get(key)
            if spec is None or spec.fixed_along_path or spec.inert or key in ("epochs", "max_steps"):
                continue
            base = float(cur[key])
            ups = [c for c in cands if c[1] > base]
            downs = [c for c in cands if c[1] < base]
            if ups and downs:
                winner = min(cands, key=lambda c: rank.get(c[0], len(rank)))
                notes.append(f"{key}: {winner[0]} takes precedence over "
                             f"{', '.join(c[0] for c in cands if c[0] != winner[0])}, which pulled the other way.")
                value = winner[1]
            elif ups:
                value = max(c[1] for c in ups)
            elif downs:
                value = min(c[1] for c in downs)
            else:
                continue
            if spec.role == CAPACITY:
                value = max(value, base)  # capacity accumulates along a path (§4.3.2)
            new = fit_value(space, key, value)
            if new != cur[key]:
                changes[key] = new
            elif value != base:
                notes.append(f"{key} is already at its bound ({cur[key]!r}).")
        return changes, notes

    def _diversify(self, space: HParamSpace, cur: dict[str, Any], changes: dict[str, Any],
                   ctx: ProposalContext) -> str:
        """A sibling from the same parent already tried this exact configuration: vary the step size
        and temperature (deterministically, by node id) rather than spend a phase repeating it."""
        target = {**cur, **changes}
        if not any(dict(sib.hparams) == target for sib in ctx.siblings):
            return ""
        rng = random.Random(f"{self.seed}-sibling-{ctx.node_id}")
        notes = []
        for key, factor, shift in (("learning_rate", rng.choice([0.5, 0.7, 1.4, 2.0]), 0.0),
                                   ("temperature", 1.0, rng.choice([-0.1, 0.1]))):
            if key not in space.specs or key not in target:
                continue
            new = fit_value(space, key, float(target[key]) * factor + shift)
            if new != target[key]:
                changes[key] = new
                notes.append(f"{key} {target[key]:g}->{new:g}")
        for key in [k for k, v in changes.items() if v == cur.get(k)]:
            del changes[key]
        return ("A sibling already ran this configuration from the same parent; varied " + ", ".join(notes) + "."
                if notes else "")

    def _scratch_start(self, space: HParamSpace, cur: dict[str, Any], parent: Node, node_id: int) -> dict[str, Any]:
        """A deterministic, genuinely different starting point for a from-scratch phase.

        Seeded by the new node's id too, so two scratch injections from the same best node differ.
        """
        rng = random.Random(f"{self.seed}-{parent.id}-{node_id}")
        out: dict[str, Any] = {}
        if "learning_rate" in space.specs:
            lr = float(cur["learning_rate"])
            sign, mag = rng.choice((-1, 1)), rng.uniform(0.3, 0.8)
            for s in (sign, -sign):
                out["learning_rate"] = fit_value(space, "learning_rate", float(f"{lr * 10 ** (s * mag):.3g}"))
                if out["learning_rate"] != cur["learning_rate"]:
                    break
        if "temperature" in space.specs:
            t = float(cur["temperature"])
            sign, mag = rng.choice((-1, 1)), round(rng.uniform(0.1, 0.3), 2)
            for s in (sign, -sign):
                out["temperature"] = fit_value(space, "temperature", round(t + s * mag, 2))
                if out["temperature"] != cur["temperature"]:
                    break
        if "kl_coef" in space.specs:
            options = [k for k in KL_LADDER if abs(k - float(cur["kl_coef"])) > 1e-12]
            out["kl_coef"] = fit_value(space, "kl_coef", rng.choice(options))
        return out

    # ---- early stopper (§3.5) --------------------------------------------------------------
    def should_stop(self, ctx: StopContext) -> StopDecision:
        inc = ctx.incumbent
        if inc is None or inc.id == ctx.node.id:
            return StopDecision(False, "CONTINUE: no completed incumbent to compare against.")
        inc_best = inc.best_val
        if inc_best is None and ctx.incumbent_metrics is not None:
            inc_best = ctx.incumbent_metrics.best_val()[0]
        if inc_best is None:
            return StopDecision(False, f"CONTINUE: incumbent node {inc.id} has no validation score.")
        pts = [(s, v) for s, v in ctx.metrics.series(names.VAL_SCORE) if math.isfinite(v)]
        if len(pts) < 2:
            return StopDecision(False, f"CONTINUE: only {len(pts)} validation point(s) so far; too early to judge "
                                       f"against the incumbent's best {inc_best:.4g}.")
        bad = non_finite(ctx.metrics, DIVERGENCE_KEYS)
        if bad:
            k, s, v = bad[0]
            return StopDecision(True, f"STOP: training diverged, {k}={v} at step {s} "
                                      f"({len(bad)} non-finite value(s) logged).")
        val = summarise_curve(names.VAL_SCORE, pts)
        assert val is not None
        diag = diagnose(ctx.metrics, self.thresholds)
        drop = val.max - val.end
        if diag.has(KL_SPIKE) and drop > max(COLLAPSE_ABS, COLLAPSE_REL * abs(val.max)):
            return StopDecision(True, f"STOP: val/score collapsed after a KL spike: {val.max:.4g} at step "
                                      f"{val.argmax_step} -> {val.end:.4g} at step {val.last_step} "
                                      f"({diag.findings[KL_SPIKE].text}).")
        evidence = ctx.evidence or _own_evidence(ctx, inc_best)
        stop, reason = judge(evidence)
        return StopDecision(stop, reason)

    # ---- error analyzer (Appendix D.1) -----------------------------------------------------
    def analyze_error(self, ctx: ErrorContext) -> ErrorFix:
        space = ctx.space
        cur = current_hparams(space, ctx.node.hparams)
        text = f"{ctx.error or ''}\n{ctx.log_tail or ''}"
        first = _first_error_line(ctx.error, ctx.log_tail)

        def fix(diagnosis: str, wanted: dict[str, float], rationale: str) -> ErrorFix:
            changes = {}
            for key, value in wanted.items():
                if key in space.specs and not (space.specs[key].fixed_along_path or space.specs[key].inert):
                    new = fit_value(space, key, value)
                    if new != cur.get(key):
                        changes[key] = new
            if not changes:
                return ErrorFix(False, f"{diagnosis} but no parameter can be adjusted further ({first!r}).",
                                agent=self.name)
            return ErrorFix(True, diagnosis, changes, rationale, agent=self.name)

        if OOM_RE.search(text):
            diagnosis = f"Out of memory: {first!r}."
            batch, low = cur.get("batch_size"), space.specs["batch_size"].low if "batch_size" in space.specs else 1
            if isinstance(batch, int) and batch > max(1, int(low or 1)):
                return fix(diagnosis, {"batch_size": batch // 2},
                           f"Halve batch_size {batch}->{max(1, batch // 2)}: activation memory scales with the prompts "
                           f"per step; the learning dynamics are otherwise unchanged.")
            rollouts = cur.get("rollouts")
            if isinstance(rollouts, int) and rollouts > 2:
                return fix(diagnosis, {"rollouts": max(2, rollouts // 2)},
                           f"batch_size is already minimal ({batch}); reduce rollouts {rollouts}->{max(2, rollouts // 2)}. "
                           f"This lowers a capacity parameter, which is allowed only to make a failed phase fit in memory.")
            length = cur.get("response_length")
            if isinstance(length, int):
                return fix(diagnosis, {"response_length": length // 2},
                           f"batch_size ({batch}) and rollouts ({rollouts}) are minimal; halve response_length "
                           f"{length}->{length // 2} (a capacity reduction, allowed only to fit in memory).")
            return ErrorFix(False, f"{diagnosis} Nothing left to shrink.", agent=self.name)
        bad = non_finite(ctx.metrics, DIVERGENCE_KEYS)
        if NAN_RE.search(text) or bad:
            where = f" ({bad[0][0]}={bad[0][2]} at step {bad[0][1]})" if bad else ""
            lr, clip = float(cur.get("learning_rate", 0) or 0), float(cur.get("grad_clip", 1.0) or 1.0)
            new_clip = min(clip, 0.5) if clip > 0.5 else clip * 0.5
            return fix(f"Non-finite loss/metrics{where}: {first!r}.", {"learning_rate": lr * 0.5, "grad_clip": new_clip},
                       f"NaN/inf comes from an update that overflowed: halve learning_rate and tighten grad_clip "
                       f"{clip:g}->{new_clip:g} so one bad batch cannot blow up the adapter.")
        return ErrorFix(False, f"Unrecognised failure: {first!r}; not a memory or numerical problem a "
                               f"hyperparameter change can fix.", agent=self.name)


def _own_evidence(ctx: StopContext, incumbent_best: float) -> StopEvidence:
    """Evidence from the two curves alone, for a caller that brings none (the search always does)."""
    from ..config.schema import EarlyStopConfig

    config = EarlyStopConfig()
    curve = ctx.metrics.series(names.VAL_SCORE)
    inc_curve = ctx.incumbent_metrics.series(names.VAL_SCORE, step_key=names.GLOBAL_STEP) \
        if ctx.incumbent_metrics is not None else []
    inc_best = best_until(inc_curve, math.inf)  # like with like: the incumbent's best on the in-flight curve
    evidence = gather(curve=curve, step=ctx.metrics.last_step(), global_offset=ctx.node.global_offset,
                      max_steps=ctx.metrics.last_step() + ctx.steps_left, iterations_left=ctx.budget_left,
                      incumbent=ctx.incumbent.id if ctx.incumbent else None,
                      incumbent_best=incumbent_best if inc_best is None else inc_best,
                      incumbent_path=inc_curve, noise_curves=[curve, inc_curve], comparable=[],
                      noise_prior=config.noise_prior, noise_floor=config.noise_floor, units=config.noise_units)
    assert evidence is not None  # should_stop returned earlier without two finite points
    return evidence
