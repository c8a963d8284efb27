"""verl's file-logger records -> our canonical metrics.jsonl records (llmzero.metrics.names).

verl 0.9 with `trainer.logger=[console,file]` writes one JSON line `{"step": k, "data": {...}}` per training step to
$VERL_FILE_LOGGER_PATH. The training keys map one to one; validation comes as `val-core/<data_source>/acc/mean@1`, one
per data source (data.py: "<split>/<subtask>"), so val/<subtask> is read directly and val/score is rebuilt from those
per-subtask means with the task's own aggregate (tasks/base.summarise), the same number trainer=trl's greedy scoring
reports.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from ...metrics import names
from .data import split_source

# verl key -> canonical name; the first key present wins where several are listed.
VERL_KEYS: dict[str, tuple[str, ...]] = {
    names.REWARD_MEAN: ("critic/score/mean",),
    names.KL: ("actor/kl_loss",),
    names.ENTROPY: ("actor/entropy",),
    names.CLIP_RATIO: ("actor/pg_clipfrac",),
    names.GRAD_NORM: ("actor/grad_norm",),
    names.RESPONSE_LENGTH: ("response_length/mean",),
    names.RESPONSE_CLIP_RATIO: ("response_length/clip_ratio",),
    names.LR: ("actor/lr",),
    names.STEP_TIME: ("timing_s/step",),
}
VAL_PREFIX, VAL_SUFFIX = "val-core/", "/acc/mean@1"
AUX_PREFIX, AUX_SUFFIX = "val-aux/", "/mean@1"

Summarise = Callable[[Mapping[str, float], Mapping[str, int]], dict[str, float]]


def validation(data: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{split: {subtask: mean}} of a record's validation keys."""
    out: dict[str, dict[str, float]] = {}
    for key, value in data.items():
        if key.startswith(VAL_PREFIX) and key.endswith(VAL_SUFFIX) and isinstance(value, (int, float)):
            split, subtask = split_source(key[len(VAL_PREFIX):-len(VAL_SUFFIX)])
            if subtask:
                out.setdefault(split, {})[subtask] = float(value)
    return out


def validation_parts(data: Mapping[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """{split: {subtask: {key: mean}}} of the extra reward keys a task's reward_details adds (val-aux/...)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in data.items():
        if key.startswith(AUX_PREFIX) and key.endswith(AUX_SUFFIX) and isinstance(value, (int, float)):
            source, _, part = key[len(AUX_PREFIX):-len(AUX_SUFFIX)].rpartition("/")
            split, subtask = split_source(source)
            if subtask and part:
                out.setdefault(split, {}).setdefault(subtask, {})[part] = float(value)
    return out


def canonical(record: Mapping[str, Any], *, start_step: int, global_offset: int, summarise: Summarise,
              counts: Mapping[str, Mapping[str, int]],
              figures: Callable[[Mapping[str, Mapping[str, float]]], dict[str, float]] | None = None
              ) -> dict[str, Any] | None:
    """Our record for one verl line (None for a line without a step, as none is written before training), with
    step = start_step + verl's step. `counts` holds each split's examples per subtask; `figures` (a task's) turns
    the per-subtask means of its reward_details into its benchmark's own figures, recorded as val/<figure>."""
    step, data = record.get("step"), record.get("data")
    if not isinstance(step, int) or step < 1 or not isinstance(data, Mapping):
        return None
    ours = start_step + step
    rec: dict[str, Any] = {names.STEP: ours, names.GLOBAL_STEP: global_offset + ours}
    for name, keys in VERL_KEYS.items():
        for key in keys:
            value = data.get(key, "absent")
            if value is None:  # verl's file logger (orjson) writes a NaN or an infinity as null
                rec[name] = math.nan
                break
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rec[name] = float(value)
                break
    scored = validation(data)
    if "val" in scored:
        val = summarise(scored["val"], counts.get("val", {}))
        rec[names.VAL_SCORE] = val["score"]
        rec.update({names.VAL_PREFIX + k: v for k, v in val.items() if k != "score"})
        parts = validation_parts(data).get("val")
        if figures is not None and parts:
            rec.update({names.VAL_PREFIX + k: v for k, v in figures(parts).items()})
    if "test" in scored:
        rec[names.TEST_SCORE] = summarise(scored["test"], counts.get("test", {}))["score"]
    return rec


def diverged(rec: Mapping[str, Any]) -> list[str]:
    """The canonical keys whose value blew up (a NaN or an infinite grad norm, KL or entropy)."""
    return [k for k in (names.GRAD_NORM, names.KL, names.ENTROPY) if k in rec and not math.isfinite(rec[k])]
