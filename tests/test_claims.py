"""Observation claims checked against the metrics store: supported, contradicted, unverifiable."""

from llmzero.agents.base import Observation
from llmzero.agents.claims import (CONTRADICTED, SUPPORTED, UNVERIFIABLE, check_observation,
                                   claimed_direction)
from llmzero.metrics.store import MetricSeries

METRICS = MetricSeries([
    {"step": s, "kl": 0.001 * s, "entropy": 1.0 - 0.04 * s, "val/score": 0.4 if s % 5 == 0 else None,
     "grad_norm": 0.01 if s != 12 else 0.5}
    for s in range(1, 21)
])
METRICS.records = [{k: v for k, v in r.items() if v is not None} for r in METRICS.records]


def obs(metric, claim, a=None, b=None):
    return Observation(metric=metric, claim=claim, start_step=a, end_step=b)


def test_direction_words():
    assert claimed_direction("KL rose 13x over its start") == "up"
    assert claimed_direction("entropy collapsed to 0.05") == "down"
    assert claimed_direction("val/score flat, no improvement for 3 evals") == "flat"
    assert claimed_direction("a KL spike at step 40") == "spike"
    assert claimed_direction("kl is 0.03") is None


def test_supported_and_contradicted_claims():
    assert check_observation(obs("kl", "kl increased steadily", 1, 20), METRICS).verdict == SUPPORTED
    c = check_observation(obs("entropy", "entropy rose", 1, 20), METRICS)
    assert c.verdict == CONTRADICTED and "claimed up" in c.reason and "trend falling" in c.reason
    assert check_observation(obs("val/score", "val/score plateaued", 5, 20), METRICS).verdict == SUPPORTED
    assert check_observation(obs("grad_norm", "grad_norm spiked at step 12", 1, 20), METRICS).verdict == SUPPORTED
    assert check_observation(obs("kl", "kl spiked", 1, 20), METRICS).verdict == CONTRADICTED  # a steady ramp


def test_unverifiable_claims():
    assert check_observation(obs("kl", "kl is moderate", 1, 20), METRICS).verdict == UNVERIFIABLE
    assert check_observation(obs("reward/mean", "reward rose", 1, 20), METRICS).verdict == UNVERIFIABLE
    c = check_observation(obs("val/score", "val rose", 18, 20), METRICS)
    assert c.verdict == UNVERIFIABLE and "1 point(s)" in c.reason
