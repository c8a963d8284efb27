"""Hyperparameter space and agent-answer validation: every error names the key, the value and what is allowed."""

from pathlib import Path

import pytest
import yaml

from llmzero.agents.base import ErrorFix, Proposal
from llmzero.agents.validation import PlanRules, ProposalError, validate_fix, validate_proposal
from llmzero.hparams.space import CAPACITY, REGULARISATION, HParamError, HParamSpace

SPACE = HParamSpace.from_config(
    yaml.safe_load((Path(__file__).parents[1] / "conf/search/default.yaml").read_text())["space"]
)
PARENT = SPACE.validate({**SPACE.defaults(), "lora_rank": 8, "response_length": 32})


def plan(changes, resume_step=10, scratch=False, checkpoints=(5, 10), max_steps=None, check=lambda h: []):
    p = Proposal(changes=changes, diagnosis="d", rationale="r", resume_step=resume_step, max_steps=max_steps)
    rules = PlanRules(space=SPACE, steps_per_epoch=lambda h: 16, max_steps_cap=200, trainer_check=check)
    return validate_proposal(p, parent_hparams=PARENT, parent_checkpoints=list(checkpoints), scratch=scratch,
                             rules=rules)


def test_roles_recorded():
    assert set(SPACE.keys_with_role(CAPACITY)) == {"response_length", "rollouts", "epochs"}
    assert {"learning_rate", "kl_coef", "temperature", "clip_ratio_low", "clip_ratio_high",
            "grad_clip"} <= set(SPACE.keys_with_role(REGULARISATION))


def test_valid_transition_applies_changes_and_coerces_types():
    out = plan({"learning_rate": "3e-5", "rollouts": 8.0, "norm_adv_by_std": "false"})
    assert out.hparams["learning_rate"] == 3e-5 and out.hparams["rollouts"] == 8
    assert isinstance(out.hparams["rollouts"], int) and out.hparams["norm_adv_by_std"] is False
    assert out.resume_step == 10 and out.max_steps == 16  # epochs 1.0 × 16 steps per epoch


def test_unknown_key_is_rejected_with_allowed_keys():
    with pytest.raises(ProposalError, match=r"changes\.lr=0\.1 is not a known hyperparameter; allowed keys: \[.*'learning_rate'"):
        plan({"lr": 0.1})


def test_out_of_bounds_value_names_key_value_and_range():
    with pytest.raises(ProposalError, match=r"changes\.temperature=5\.0 is not valid: expected a float in \[0\.1, 2\]"):
        plan({"temperature": 5.0})
    with pytest.raises(ProposalError, match=r"changes\.rollouts='many' is not valid: expected an int in \[2, 64\]"):
        plan({"rollouts": "many"})


def test_lora_rank_is_fixed_along_a_path():
    with pytest.raises(HParamError, match=r"changes\.lora_rank=16 changes a parameter fixed along a strategy path \(parent has 8\)"):
        plan({"lora_rank": 16})
    # a from-scratch phase trains a new adapter, so the rank may change there
    assert plan({"lora_rank": 16}, resume_step=None, scratch=True).hparams["lora_rank"] == 16


def test_resume_step_must_be_a_parent_checkpoint():
    with pytest.raises(ProposalError, match=r"resume_step=7 is not a checkpoint of the parent; available steps: \[5, 10\]"):
        plan({}, resume_step=7)
    with pytest.raises(ProposalError, match="checkpoint information is withheld"):
        plan({}, resume_step=5, scratch=True, checkpoints=())


def test_max_steps_bounds():
    assert plan({}, max_steps=50).max_steps == 50
    with pytest.raises(ProposalError, match=r"max_steps=500 is not valid: expected an int in \[1, 200\]"):
        plan({}, max_steps=500)
    assert plan({"epochs": 2.5}).max_steps == 40


def test_trainer_constraints_are_checked_before_running():
    def check(h):
        return [f"batch_size={h['batch_size']} must be a multiple of 3"] if h["batch_size"] % 3 else []
    with pytest.raises(ProposalError, match="batch_size=32 must be a multiple of 3"):
        plan({}, check=check)


def test_several_problems_are_reported_together():
    with pytest.raises(ProposalError) as err:
        plan({"temperature": -1, "kl_coef": 9, "bogus": 1})
    msg = str(err.value)
    assert "changes.temperature=-1" in msg and "changes.kl_coef=9" in msg and "changes.bogus=1" in msg


def test_non_mapping_changes():
    with pytest.raises(ProposalError, match="must be a mapping"):
        plan(["learning_rate", 1e-4])


def test_fix_validation():
    fix = ErrorFix(fixable=True, diagnosis="oom", changes={"batch_size": 16})
    rules = PlanRules(space=SPACE, steps_per_epoch=lambda h: 512 // h["batch_size"], max_steps_cap=200,
                      trainer_check=lambda h: [])
    out = validate_fix(fix, failed_hparams=PARENT, rules=rules)
    assert out.hparams["batch_size"] == 16 and out.max_steps == 32
    with pytest.raises(HParamError):
        validate_fix(ErrorFix(True, "x", {"batch_size": 0}), failed_hparams=PARENT, rules=rules)


def test_space_rejects_nan_bools_for_numbers_and_missing_required():
    spec = SPACE.specs["learning_rate"]
    for bad in (float("nan"), True, "abc", None):
        with pytest.raises(HParamError, match="hyperparameter lr="):
            spec.coerce("lr", bad)
    space = HParamSpace.from_config({"x": {"type": "int", "low": 0, "high": 3}})
    with pytest.raises(HParamError, match=r"hparams\.x is missing and has no default"):
        space.validate({})
    with pytest.raises(HParamError, match=r"search\.space\.y\.type='complex' is not valid"):
        HParamSpace.from_config({"y": {"type": "complex"}})
