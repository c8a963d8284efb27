"""verl's checkpoints as ours: a LoRA adapter folder per saved step, extracted once and kept.

verl saves `<default_local_dir>/global_step_<k>/actor/` as FSDP shards (`model_world_size_<W>_rank_<r>.pt`, with
`save_lora_only` the adapter tensors alone), `fsdp_config.json`, `huggingface/` (config and tokenizer) and
`lora_train_meta.json`; there is no adapter folder in it. verl's model merger (`python -m verl.model_merger merge
--backend fsdp`) builds one as `<target>/lora_adapter/`, and then writes the whole merged model beside it, which a search
never needs (gigabytes per checkpoint for a 4B model). So its own FSDP merger is run here in-process and stopped once
the adapter is written: the same shard loading, the same tensor names and adapter_config.json, nothing more.

The result is our checkpoint layout (state/phase_dir.py): `checkpoints/step_<k>/` with adapter_model.safetensors,
adapter_config.json, phase.json, and COMPLETE written last. A child phase hands that folder to verl as
`model.lora_adapter_path` (PEFT's layout, which verl loads with PeftModel.from_pretrained), and trainer=trl can load it
too, so the extraction happens once per saved step, whichever phase or backend reads it later.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ...state.phase_dir import ADAPTER_CONFIG, ADAPTER_WEIGHTS

ADAPTER_FILES = (ADAPTER_WEIGHTS, ADAPTER_CONFIG)


def extract_adapter(actor_dir: Path | str, target: Path | str) -> Path:
    """The LoRA adapter of verl checkpoint `actor_dir` (…/global_step_<k>/actor) written into folder `target`."""
    from verl.model_merger.base_model_merger import ModelMergerConfig
    from verl.model_merger.fsdp_model_merger import FSDPModelMerger

    actor_dir, target = Path(actor_dir), Path(target)
    if not (actor_dir / "fsdp_config.json").is_file():
        raise FileNotFoundError(f"{actor_dir} is not a verl FSDP checkpoint (no fsdp_config.json)")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".merge-", dir=target) as tmp:
        merger = FSDPModelMerger(ModelMergerConfig(operation="merge", backend="fsdp", local_dir=str(actor_dir),
                                                   target_dir=tmp, hf_model_config_path=str(actor_dir / "huggingface")))
        # merge_and_save() up to its save step, which would also write the full merged model
        world = merger._get_world_size()
        mesh, mesh_names = merger._extract_device_mesh_info(merger._load_rank_zero_state_dict(world), world)
        shards, mesh_shape = merger._calculate_shard_configuration(mesh, mesh_names)
        state = merger._load_and_merge_state_dicts(world, shards, mesh_shape, mesh_names)
        written = merger.save_lora_adapter(state)
        if written is None:
            raise ValueError(f"verl checkpoint {actor_dir} holds no LoRA tensors: was lora_rank 0?")
        for name in ADAPTER_FILES:
            shutil.move(str(Path(written) / name), str(target / name))
            os.chmod(target / name, 0o644)  # safetensors writes 0600; other readers of shared storage need it
    return target


def export_checkpoint(actor_dir: Path | str, target: Path | str, meta: dict[str, Any]) -> Path:
    """verl checkpoint -> our checkpoints/step_<k>/ (adapter, phase.json, then COMPLETE)."""
    from ..base import mark_checkpoint_complete

    target = Path(target)
    (target / "COMPLETE").unlink(missing_ok=True)  # re-exporting a step: incomplete until the end
    extract_adapter(actor_dir, target)
    (target / "phase.json").write_text(json.dumps(meta, indent=2, default=str))
    mark_checkpoint_complete(target)
    return target

