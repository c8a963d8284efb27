"""model=qwen3_*: every size's config composes, a randomly initialised model of each size has the size its config
names (built on the meta device: no weights, no download), and the smallest runs a real 2-step TRL phase on the CPU
from a local directory, through a chat template with the thinking switch, gradient checkpointing on.

The hub's Qwen3 tokenizer cannot be downloaded here, so the model directory's tokenizer is llmzero's character
tokenizer given a chat template written for this test in Qwen3's layout (<|im_start|>role ... <|im_end|>, and an
empty <think></think> when thinking is off): a stand-in for the real template, named as one."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir

# The architecture of each size, as its config.json on the hub gives it.
ARCH = {
    "qwen3_0_6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, tie_word_embeddings=True),
    "qwen3_1_7b": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, tie_word_embeddings=True),
    "qwen3_4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, tie_word_embeddings=True),
    "qwen3_8b": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, tie_word_embeddings=False),
}
COMMON = dict(vocab_size=151936, head_dim=128, max_position_embeddings=40960, rope_theta=1000000.0)
DEPTH = 4  # layers of the random Qwen3-0.6B a phase trains here (qwen3_0_6b_dir)

# A stand-in chat template in Qwen3's layout (not Qwen's own file, which cannot be downloaded here).
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}")


def model_cfg(name, *overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=[f"model={name}", *overrides])
    return OmegaConf.to_container(cfg.model, resolve=True)


@pytest.mark.parametrize("name", sorted(ARCH))
def test_each_size_composes_and_a_random_model_of_it_has_its_size(name):
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    cfg = model_cfg(name)
    assert cfg["path"].startswith("Qwen/Qwen3-") and cfg["hparams"]["lora_rank"] == 64
    assert cfg["chat_template"] is True and cfg["enable_thinking"] is True and cfg["eval_max_new_tokens"] == 8192
    assert cfg["gradient_checkpointing"] is True
    with torch.device("meta"):  # shapes only: no memory, no weights
        model = Qwen3ForCausalLM(Qwen3Config(**COMMON, **ARCH[name]))
    params = sum(p.numel() for p in model.parameters()) / 1e9
    assert params == pytest.approx(cfg["params_b"], rel=0.1), (name, params)


@pytest.fixture(scope="module")
def qwen3_0_6b_dir(tmp_path_factory):
    """A randomly initialised Qwen3-0.6B saved as a local model directory, with the stand-in tokenizer: its config but
    DEPTH of its 28 layers (all alike), since a training step at full depth takes a minute or more on 2 CPU cores. The full
    size is checked by test_each_size_composes_and_a_random_model_of_it_has_its_size."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from llmzero.models.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = TEMPLATE
    out = tmp_path_factory.mktemp("qwen3-0.6b-random")
    torch.manual_seed(0)
    config = Qwen3Config(**COMMON, **{**ARCH["qwen3_0_6b"], "num_hidden_layers": DEPTH},
                         eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None, dtype="bfloat16")
    model = Qwen3ForCausalLM(config).to(torch.bfloat16)  # bf16 on disk, as the hub ships it
    model.generation_config = GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_the_chat_template_is_applied_with_the_thinking_switch(qwen3_0_6b_dir):
    from llmzero.models.loading import prompt_renderer
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(qwen3_0_6b_dir)
    on = prompt_renderer(tok, model_cfg("qwen3_0_6b"))("12+34=")
    off = prompt_renderer(tok, model_cfg("qwen3_0_6b", "model.enable_thinking=false"))("12+34=")
    assert on == "<|im_start|>user\n12+34=<|im_end|>\n<|im_start|>assistant\n"
    assert off == on + "<think>\n\n</think>\n\n"
    assert prompt_renderer(tok, model_cfg("qwen3_0_6b", "model.chat_template=false"))("12+34=") == "12+34="
    tok.chat_template = None
    with pytest.raises(ValueError, match="model.chat_template=true"):
        prompt_renderer(tok, model_cfg("qwen3_0_6b"))


@pytest.mark.slow
def test_a_random_qwen3_0_6b_runs_a_2_step_phase_on_the_cpu(qwen3_0_6b_dir, tmp_path):
    from llmzero.metrics.store import read_records
    from llmzero.trainers.base import PhaseSpec
    from llmzero.trainers.trl.backend import TRLTrainer

    model = {**model_cfg("qwen3_0_6b"), "path": str(qwen3_0_6b_dir), "eval_max_new_tokens": 4}
    task = {"_target_": "llmzero.tasks.arithmetic.ArithmeticTask", "name": "arithmetic", "train_size": 8,
            "val_size": 2, "test_size": 2, "subtasks": ["add_2digit"], "seed": 0}
    hp = {**model["hparams"], "batch_size": 2, "rollouts": 2, "response_length": 4, "kl_coef": 0.0, "max_steps": 0,
          "entropy_coef": 0.0, "norm_adv_by_std": True}
    trainer = TRLTrainer(task=task, model=model, eval_every=2, save_every=2, torch_threads=2)
    spec = PhaseSpec(node_id=0, hparams=hp, output_dir=str(tmp_path / "node_0"), max_steps=2, eval_every=2,
                     save_every=2, seed=0)
    handle = trainer.start(spec)
    handle.wait(900)
    result = handle.result()
    log = (tmp_path / "node_0" / "log.txt").read_text()
    assert result.status == "completed", (result.error, log[-3000:])
    records = read_records(tmp_path / "node_0" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2] and "val/score" in records[-1]
    assert "gradient_checkpointing=True" in log and "bf16=False" in log  # bf16 is for a GPU; the CPU runs float32
    assert "'<|im_start|>user\\n" in log  # the train prompts went through the chat template
    phase = json.loads((tmp_path / "node_0" / "checkpoints" / "step_2" / "phase.json").read_text())
    assert phase["base_model_path"] == str(qwen3_0_6b_dir) and phase["eval_max_new_tokens"] == 4
    adapter = json.loads((tmp_path / "node_0" / "checkpoints" / "step_2" / "adapter_config.json").read_text())
    assert adapter["r"] == 64


def test_a_hub_model_this_machine_cannot_get_is_one_error_before_the_search(tmp_path):
    # Offline and not cached: refused before anything runs, not a whole search ending in a final-scoring traceback.
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-m", "llmzero", "model=qwen3_0_6b", "wandb.mode=disabled",
                          f"search.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "model.path=Qwen/Qwen3-0.6B is not in this machine's Hugging Face cache" in out.stderr
    assert "huggingface-cli download Qwen/Qwen3-0.6B" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "tree.json").exists()
