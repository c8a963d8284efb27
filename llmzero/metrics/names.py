"""Canonical metric names every trainer backend writes to metrics.jsonl.

Backends translate their native keys (TRL's `reward_std`, verl's `actor/kl_loss`, ...) to
these, so agents, plots and the early stopper read one vocabulary.
"""

STEP = "step"  # phase-local optimiser step, 1-based
GLOBAL_STEP = "global_step"  # step along the whole strategy path
REWARD_MEAN = "reward/mean"
REWARD_STD = "reward/std"
VAL_SCORE = "val/score"  # the in-flight curve: the whole val split, or the trainer's fixed slice of it
VAL_PREFIX = "val/"  # val/<subtask>
# The whole val split, where a backend scoring a slice in flight scored a checkpoint that may become the best;
# where present it, not val/score, picks the phase's best checkpoint.
VAL_FULL_SCORE = "val_full/score"
VAL_FULL_PREFIX = "val_full/"  # val_full/<subtask>
TEST_SCORE = "test/score"
KL = "kl"
ENTROPY = "entropy"
CLIP_RATIO = "clip_ratio"  # PPO ratio clipping, not response-length truncation
GRAD_NORM = "grad_norm"
RESPONSE_LENGTH = "response_length/mean"
RESPONSE_CLIP_RATIO = "response_length/clip_ratio"  # share of responses cut at response_length
ZERO_STD_FRAC = "reward/zero_std_frac"  # groups whose rollouts all got the same reward
LR = "lr"
STEP_TIME = "step_time"

TRAIN_METRICS = (
    REWARD_MEAN,
    REWARD_STD,
    KL,
    ENTROPY,
    CLIP_RATIO,
    GRAD_NORM,
    RESPONSE_LENGTH,
    RESPONSE_CLIP_RATIO,
    ZERO_STD_FRAC,
    LR,
    STEP_TIME,
)
CANONICAL = (STEP, GLOBAL_STEP, VAL_SCORE, TEST_SCORE) + TRAIN_METRICS


def is_canonical(key: str) -> bool:
    return key in CANONICAL or key.startswith((VAL_PREFIX, VAL_FULL_PREFIX, "test/"))
