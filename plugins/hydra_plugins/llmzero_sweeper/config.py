"""The sweeper's settings, registered as `hydra/sweeper=llmzero`.

What the search does is set where the search's other settings live (`sweeper.mode`, `sweeper.trials`, `search.*`,
`cluster.max_concurrent`), so the same keys mean the same with and without this plugin; here is only what concerns
Hydra's side. No nested config takes a `_target_`: Hydra 1.3 instantiates a plugin's config recursively.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class LLMZeroSweeperConf:
    _target_: str = "hydra_plugins.llmzero_sweeper.llmzero_sweeper.LLMZeroSweeper"
    # Jobs per launcher call; null: every phase the search can start at once (up to cluster.max_concurrent).
    max_batch_size: Optional[int] = None
    # Swept hyperparameters in Hydra's grammar, as the Optuna sweeper reads them: `hparams.<name>: interval(a, b)`,
    # `tag(log, interval(a, b))`, `choice(a, b)`, `range(start, stop, step)` (what each mode makes of them: params.py)
    params: Dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="llmzero", node=LLMZeroSweeperConf, provider="llmzero")
