"""GPU smoke check of the cluster path, in stages that each print PASS or FAIL with what they measured.

    bash benchmarks/gpu_smoke.sh [STAGE ...]      (default: imports ray stop memory; log and files under $OUT)

Stages (nothing is downloaded: the shipped tiny model and the embedded arithmetic task, or a random model):
  imports   torch (CUDA devices), verl, vllm, transfer_queue and the attention kernel trainer=verl will choose
  ray       a local Ray head with --num-gpus=1 and a search on it (cluster=ray, cluster.max_concurrent=2): the root
            phase, then two children that cannot share the GPU, so one must wait in the search's GPU queue; each
            child must continue from its parent's adapter (its first-step KL at least a fifth of the parent's at
            the step it resumed from, KL > 0); the final scores must come from a job on the cluster
  stop      one verl phase (enforce_eager) told to STOP after its first save: it must end early_stopped with a
            complete adapter in its last checkpoint
  memory    two steps at response length 6144 of a randomly initialised model of Qwen3-4B's shape (llmzero's
            character tokenizer stands in for Qwen's, so the embedding is smaller than the real 151k rows): peak
            GPU memory and step time as verl reports them
  trl       a 2-phase search with trainer=trl trainer.device=cuda and the same child check (not in the default)
  search-tool  a PaperSearchQA phase with its search tool under verl: a rollout must have searched (not in the default)
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
EAGER = "trainer.overrides=[actor_rollout_ref.rollout.enforce_eager=true]"
SMALL = ["search.display=false", "wandb.mode=offline", "hparams.batch_size=16", "hparams.rollouts=4",
         "hparams.learning_rate=1e-3", "hparams.kl_coef=1e-3", "trainer.eval_every=3", "trainer.save_every=3"]
VERL = ["trainer=verl", "cluster.gpus_per_phase=1", "trainer.gpu_memory_utilization=0.3", EAGER]


def say(stage: str, ok: bool, text: str) -> bool:
    print(f"gpu_smoke: {stage}: {'PASS' if ok else 'FAIL'} - {text}", flush=True)
    return ok


def llmzero(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    print("  $ python -m llmzero " + " ".join(args), flush=True)
    return subprocess.run([sys.executable, "-m", "llmzero", *args], cwd=ROOT, timeout=timeout, text=True)


def records(phase_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (phase_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def child_continues(run: Path) -> tuple[bool, str]:
    """Every completed child's first-step KL goes on from its parent's at the step it resumed from."""
    tree = json.loads((run / "tree.json").read_text())
    children = [n for n in tree["nodes"] if n.get("parent") is not None and n.get("status") == "completed"]
    if not children:
        return False, f"no completed child phase (statuses {[(n['id'], n.get('status')) for n in tree['nodes']]})"
    out = []
    for child in children:
        spec = json.loads((run / "nodes" / str(child["id"]) / "phase_config.json").read_text())["spec"]
        resumed = int(str(spec["init_checkpoint"]).rstrip("/").rsplit("step_", 1)[1])
        parent_kl = {r["step"]: r for r in records(run / "nodes" / str(child["parent"]))}[resumed].get("kl", 0)
        first_kl = records(run / "nodes" / str(child["id"]))[0].get("kl", 0)
        if not (parent_kl > 1e-6 and first_kl >= parent_kl / 5):
            return False, f"child #{child['id']} starts at KL {first_kl} against its parent's {parent_kl} at step {resumed}"
        out.append(f"#{child['id']} KL {first_kl:.3g} (parent #{child['parent']} at step {resumed}: {parent_kl:.3g})")
    return True, "children continue from their parents' adapters: " + "; ".join(out)


def stage_imports(out: Path) -> bool:
    found, missing = [], []
    for name in ("torch", "verl", "vllm", "transfer_queue", "flash_attn"):
        try:
            mod = importlib.import_module(name)
            found.append(f"{name} {getattr(mod, '__version__', '?')}")
        except Exception as exc:  # noqa: BLE001 - any import failure is the finding
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    import torch

    from llmzero.trainers.verl.overrides import attention

    gpus = torch.cuda.device_count()
    text = (f"{', '.join(found)}; CUDA devices {gpus} ({torch.cuda.get_device_name(0) if gpus else 'none'}); "
            f"attention {attention('auto')}")
    required_missing = [m for m in missing if not m.startswith("flash_attn")]
    return say("imports", gpus > 0 and not required_missing, text + (f"; missing: {', '.join(missing)}" if missing else ""))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stage_ray(out: Path) -> bool:
    ray = str(Path(sys.executable).parent / "ray")
    dash = free_port()
    start = subprocess.run([ray, "start", "--head", "--num-gpus=1", f"--port={free_port()}",
                            f"--dashboard-port={dash}", "--include-dashboard=true"], text=True, timeout=120)
    if start.returncode:
        return say("ray", False, f"`ray start --head --num-gpus=1` exited {start.returncode}")
    try:
        run = out / "ray"
        proc = llmzero([*VERL, *SMALL, "cluster=ray", f"cluster.address=http://127.0.0.1:{dash}",
                        "cluster.max_concurrent=2", "search.budget=3", "hparams.max_steps=6", f"search.dir={run}"],
                       timeout=480)
        if proc.returncode:
            return say("ray", False, f"the search exited {proc.returncode}")
        ok, text = child_continues(run)
        events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines() if line.strip()]
        queued = sorted({e["node"] for e in events if e.get("event") == "phase_state" and e.get("state") == "queued"})
        meta = json.loads((run / "tree.json").read_text())["meta"]
        scored = set(meta.get("base_model", {})) == {"val", "test"} and (run / "final_eval" / "result.json").exists()
        return say("ray", ok and bool(queued) and scored,
                   f"{text}; queued in the search's GPU queue: nodes {queued or 'none'}; final scores on the cluster: "
                   f"base model {meta.get('base_model')}")
    finally:
        subprocess.run([ray, "stop", "--force"], timeout=120)


def compose_cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    from llmzero.config.hydra_store import register_configs
    from llmzero.paths import conf_dir

    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def one_phase(cfg_overrides: list[str], hp: dict, phase_dir: Path, steps: int,
              watch: Callable[[object], None] | None = None, timeout: float = 300):
    from llmzero.app import build_space, root_hparams
    from llmzero.trainers.base import PhaseSpec
    from llmzero.trainers.factory import trainer_from_config

    cfg = compose_cfg(*cfg_overrides)
    trainer = trainer_from_config(cfg)
    trainer.prepare(print)
    hparams = {**root_hparams(cfg, build_space(cfg, trainer)), **hp}
    handle = trainer.start(PhaseSpec(node_id=0, hparams=hparams, output_dir=str(phase_dir), max_steps=steps,
                                     eval_every=2, save_every=2))
    deadline = time.monotonic() + timeout
    while not handle.done():
        handle.poll()
        if watch:
            watch(handle)
        if time.monotonic() > deadline:
            handle.kill()
            break
        time.sleep(0.5)
    return handle.result()


def stage_stop(out: Path) -> bool:
    phase_dir = out / "stop"
    first = phase_dir / "checkpoints" / "step_2" / "COMPLETE"

    def stop_after_first_save(handle) -> None:
        if first.exists():
            handle.stop("gpu smoke: stop after the first save")

    result = one_phase(VERL, {"batch_size": 16, "rollouts": 4}, phase_dir, 20, stop_after_first_save)
    last = phase_dir / "checkpoints" / f"step_{result.checkpoints[-1]}" if result.checkpoints else None
    complete = last is not None and all((last / f).exists() for f in ("COMPLETE", "adapter_model.safetensors",
                                                                       "adapter_config.json"))
    return say("stop", result.status == "early_stopped" and result.steps_done < 20 and complete,
               f"status {result.status} after {result.steps_done} of 20 steps; last checkpoint {last} "
               f"{'complete' if complete else 'incomplete'}{'; error ' + str(result.error) if result.error else ''}")


def random_qwen3_4b(folder: Path) -> Path:
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    from llmzero.models.tokenizer import build_tokenizer

    tok = build_tokenizer()
    config = Qwen3Config(vocab_size=len(tok), hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                         rope_theta=1000000.0, tie_word_embeddings=True, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, bos_token_id=None, dtype="bfloat16")
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def stage_memory(out: Path) -> bool:
    t0 = time.monotonic()
    model = random_qwen3_4b(out / "qwen3-4b-random")
    built = time.monotonic() - t0
    phase_dir = out / "memory"
    result = one_phase([*VERL, f"model.path={model}", "model.chat_template=false"],
                       {"batch_size": 4, "rollouts": 4, "response_length": 6144, "lora_rank": 64}, phase_dir, 2,
                       timeout=420)
    lines = [json.loads(line).get("data", {}) for f in sorted((phase_dir / "verl").glob("*.metrics.jsonl"))
             for line in f.read_text().splitlines() if line.strip()]
    peak = max((d.get("perf/max_memory_allocated_gb", 0) for d in lines), default=None)
    step = [round(d["timing_s/step"], 1) for d in lines if "timing_s/step" in d]
    length = [round(d["response_length/mean"]) for d in lines if "response_length/mean" in d]
    return say("memory", result.status == "completed" and peak is not None,
               f"random Qwen3-4B shape (built in {built:.0f} s), batch 4 x 4 rollouts, response_length 6144: "
               f"peak {peak} GB allocated, step times {step} s, mean response lengths {length}"
               + (f"; phase {result.status}: {result.error}" if result.status != "completed" else ""))


def stage_trl(out: Path) -> bool:
    run = out / "trl"
    proc = llmzero(["trainer=trl", "trainer.device=cuda", "cluster.gpus_per_phase=1", *SMALL, "search.budget=2",
                    "hparams.max_steps=6", f"search.dir={run}"], timeout=300)
    ok, text = child_continues(run) if proc.returncode == 0 else (False, f"the search exited {proc.returncode}")
    return say("trl", ok, text)


def stage_search_tool(out: Path) -> bool:
    """PaperSearchQA's tool in verl's rollouts: the tiny model, warm-started on the fixture to write <search>, must
    produce a rollout of 4 turns or more (prompt, call, documents, answer) in verl's num_turns/max."""
    run, fix = out / "search-tool", ROOT / "tests" / "fixtures" / "tasks"
    proc = llmzero([*VERL, "task=papersearchqa", f"task.data_files={fix / 'papersearchqa.jsonl'}",
                    f"task.retriever.corpus={fix / 'pubmed_corpus.jsonl'}", "task.retriever.topk=1", "model=tiny",
                    "+model.build.sft_steps=150", "+model.build.sft_batch_size=6", "search.budget=1",
                    "search.display=false", "wandb.mode=offline", "hparams.max_steps=2", "hparams.batch_size=4",
                    "hparams.rollouts=4", "hparams.response_length=256", "trainer.eval_every=2",
                    "trainer.save_every=2", f"search.dir={run}"], timeout=300)
    turns = [json.loads(line).get("data", {}).get("num_turns/max", 0)
             for f in (run / "nodes" / "0" / "verl").glob("*.metrics.jsonl") for line in f.read_text().splitlines()
             if line.strip()]
    return say("search-tool", proc.returncode == 0 and bool(turns) and max(turns) >= 4,
               f"verl num_turns/max per step {turns} (a rollout that searched has 4 or more)")


STAGES = {"imports": stage_imports, "ray": stage_ray, "stop": stage_stop, "memory": stage_memory, "trl": stage_trl,
          "search-tool": stage_search_tool}
DEFAULT = ["imports", "ray", "stop", "memory"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help=f"of {sorted(STAGES)}; default: {' '.join(DEFAULT)}")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/llmzero-gpu-smoke")))
    args = parser.parse_args(argv)
    unknown = [s for s in args.stages if s not in STAGES]
    if unknown:
        parser.error(f"stage {unknown[0]!r} is not one of {sorted(STAGES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.stages or DEFAULT:
        t0 = time.monotonic()
        try:
            ok = STAGES[name](args.out)
        except Exception as exc:  # noqa: BLE001 - a stage that crashes is a FAIL with its reason, the next still runs
            ok = say(name, False, f"{type(exc).__name__}: {exc}")
        print(f"gpu_smoke: {name} took {time.monotonic() - t0:.0f} s", flush=True)
        if not ok:
            failed.append(name)
            if name == "imports":
                break  # nothing else can run without them
    print(f"gpu_smoke: {'all PASS' if not failed else 'FAIL: ' + ', '.join(failed)} (files under {args.out})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
