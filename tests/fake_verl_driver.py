"""FAKE verl driver, for the CPU tests only: it stands in for `python -m verl.trainer.main_ppo <overrides>`, which cannot
run without GPUs (verl's resource check counts GPUs and its rollouts need vLLM or SGLang). Selected with
`trainer.driver=fake_verl_driver` and tests/ on PYTHONPATH.

It does only what our side of the seam reads, and it uses verl's real pieces wherever they run on a CPU:
  - the overrides are composed against verl's real ppo_trainer.yaml (the same Hydra compose main_ppo does);
  - the reward function is loaded with verl's real get_custom_reward_fn, with its reward_kwargs, and called with verl's
    signature on the val parquet rows (read back with datasets, as verl's RLHFDataset does);
  - metrics are logged through verl's real Tracking(["console", "file"]), i.e. its FileLogger at $VERL_FILE_LOGGER_PATH;
  - the LoRA model is built on the real base model as verl's FSDP engine builds it (get_peft_model with lora_rank,
    lora_alpha and target_modules, or PeftModel.from_pretrained(lora_adapter_path));
  - checkpoints are written in verl's layout (global_step_<k>/actor/model_world_size_1_rank_0.pt, fsdp_config.json,
    huggingface/, lora_train_meta.json, latest_checkpointed_iteration.txt) and verl's real build_checkpoint_callback
    builds trainer.checkpoint_callback_class, whose on_save gets the trainer, the step and the folder.
What is FAKE: no rollout and no gradient. Each step moves every LoRA B matrix by lr × 100 (so a parent's adapter
carried into a child shows as a KL that continues from the parent's), "kl" is the mean |B| and the validation
responses are the task's reference answer for a share of rows that grows with that KL.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    import torch
    from datasets import Dataset
    from omegaconf import OmegaConf
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM
    from verl.trainer.ppo.checkpoint_callback import build_checkpoint_callback
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.utils.tracking import Tracking

    from llmzero.tasks.base import Example
    from llmzero.trainers.verl.compose import compose
    from llmzero.trainers.verl.reward import task_of

    cfg = compose(argv)
    OmegaConf.resolve(cfg)
    tr, model_cfg = cfg.trainer, cfg.actor_rollout_ref.model
    print(f"FAKE verl driver: {len(argv)} overrides composed; model {model_cfg.path}", flush=True)
    reward_fn = get_custom_reward_fn(cfg)
    phase_config = cfg.reward.custom_reward_function.reward_kwargs.phase_config
    task = task_of(phase_config)
    val_rows = [r for f in cfg.data.val_files for r in Dataset.from_parquet(str(f))]

    base = AutoModelForCausalLM.from_pretrained(model_cfg.path)
    if model_cfg.lora_adapter_path:
        model = PeftModel.from_pretrained(base, model_cfg.lora_adapter_path, is_trainable=True)
        print(f"FAKE verl driver: loaded LoRA adapter {model_cfg.lora_adapter_path}", flush=True)
    else:
        model = get_peft_model(base, LoraConfig(r=model_cfg.lora_rank, lora_alpha=model_cfg.lora_alpha,
                                                target_modules=model_cfg.target_modules, task_type="CAUSAL_LM"))
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    lr = float(cfg.actor_rollout_ref.actor.optim.lr)

    def kl() -> float:
        return float(torch.stack([p.detach().abs().mean() for p in lora_b]).mean())

    def validate() -> dict[str, float]:
        share = min(1.0, 0.1 + kl())
        by_source: dict[str, list[float]] = {}
        for i, row in enumerate(val_rows):
            ex = Example(prompt=row["extra_info"]["prompt"], answer=row["reward_model"]["ground_truth"],
                         subtask=row["extra_info"]["subtask"])
            right = (i % 10) < round(share * 10)
            response = (task.reference(ex) if hasattr(task, "reference") else ex.answer) if right else "no idea"
            result = reward_fn(data_source=row["data_source"], solution_str=response,
                               ground_truth=row["reward_model"]["ground_truth"], extra_info=row["extra_info"])
            by_source.setdefault(row["data_source"], []).append(float(result["acc"]))
        return {f"val-core/{k}/acc/mean@1": sum(v) / len(v) for k, v in by_source.items()}

    class Trainer:  # what verl's callback receives: the attributes our callback reads
        total_training_steps = int(tr.total_training_steps)
        global_steps = 0

    trainer = Trainer()
    callback = build_checkpoint_callback(cfg)
    logger = Tracking(project_name=tr.project_name, experiment_name=tr.experiment_name, default_backend=list(tr.logger),
                      config={})
    if tr.val_before_train:
        logger.log(data=validate(), step=0)
        if tr.val_only:
            logger.finish()
            return 0
    step = 1
    while step <= trainer.total_training_steps:
        t0 = time.monotonic()
        trainer.global_steps = step
        with torch.no_grad():
            for p in lora_b:
                p.add_(lr * 100)
        last = step >= trainer.total_training_steps
        time.sleep(float(os.environ.get("FAKE_VERL_STEP_S", "0")))  # rollouts and the update, before the save
        if tr.save_freq > 0 and (last or step % tr.save_freq == 0):
            save(model, Path(tr.default_local_dir), step, model_cfg)
            callback.on_save(trainer=trainer, global_step=step, checkpoint_dir=f"{tr.default_local_dir}/global_step_{step}",
                             async_save=False)
        metrics = {"critic/score/mean": min(1.0, kl()), "actor/kl_loss": kl(), "actor/entropy": 1.0 - min(0.9, kl()),
                   "actor/pg_clipfrac": 0.01, "actor/grad_norm": float(os.environ.get("FAKE_VERL_GRAD_NORM", "0.5")),
                   "actor/lr": lr, "response_length/mean": 10.0, "response_length/clip_ratio": 0.0}
        if tr.test_freq > 0 and (last or step % tr.test_freq == 0):
            metrics.update(validate())
        metrics["timing_s/step"] = time.monotonic() - t0
        logger.log(data=metrics, step=step)
        step += 1
    logger.finish()
    return 0


def save(model, root: Path, step: int, model_cfg) -> None:
    """verl's FSDP checkpoint layout for one rank, LoRA tensors only (actor.checkpoint.save_lora_only)."""
    import torch

    actor = root / f"global_step_{step}" / "actor"
    (actor / "huggingface").mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora_" in k}
    torch.save(state, actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
    peft = model.peft_config["default"]
    (actor / "lora_train_meta.json").write_text(json.dumps({"r": peft.r, "lora_alpha": peft.lora_alpha,
                                                            "task_type": "CAUSAL_LM"}))
    model.get_base_model().config.save_pretrained(actor / "huggingface")
    (root / "latest_checkpointed_iteration.txt").write_text(str(step))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
