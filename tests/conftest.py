import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # helpers and test agents by module name


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def default_tiny_cache(tmp_path_factory):
    """An LLMZERO_CACHE holding the embedded default model (builtin:tiny built with conf/model/tiny.yaml's options for
    the arithmetic task), built once per session and shared by the tests that train or load it (about 60 s)."""
    from omegaconf import OmegaConf

    from llmzero.models.resolve import resolve_model_path
    from llmzero.paths import conf_dir
    from llmzero.tasks.base import build_task

    def preset(group, name):
        node = OmegaConf.to_container(OmegaConf.load(conf_dir() / group / f"{name}.yaml"), resolve=True)
        node.pop("defaults", None)
        return node

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by the run's workers: built once, the others wait on the cache's file lock
    cache = root / "llmzero-default-cache"
    cache.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMZERO_CACHE", str(cache))
        path = resolve_model_path(preset("model", "tiny"), build_task(preset("task", "arithmetic")))
    return {"cache": cache, "path": path}


def pytest_collection_modifyitems(config, items):
    """Files holding slow tests first: xdist hands out whole files (--dist loadfile) in this order, and a long file
    handed out last would leave the other workers idle while it finishes."""
    slow_files = {item.fspath for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.fspath not in slow_files)  # stable: the order within each group is kept
