import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # helpers and test agents by module name


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def default_tiny_cache(tmp_path_factory):
    """An LLMZERO_CACHE for the tests that run the embedded default, and the path of its model: builtin:tiny with
    conf/model/tiny.yaml's options for the arithmetic task, which is shipped in the package (nothing is built; the
    cache would only fill if the shipped files no longer matched the builder's defaults)."""
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


# Seconds each of the longest files took on 2 cores (pytest --junitxml, 2026-12-03, with that day's later cuts), to
# hand them out longest first. A file missing here runs after these (slow-marked ones first); a stale figure changes
# the order, never a result.
MEASURED_S = {"test_bad_inputs.py": 220, "test_app.py": 215, "test_ray_executor.py": 173, "test_verl_phase.py": 144,
              "test_sweeper.py": 121, "test_trl_backend.py": 103, "test_task_searches.py": 100,
              "test_task_search_tool.py": 92, "test_engine.py": 64, "test_llm_search.py": 62, "test_recipes.py": 51,
              "test_verl_backend.py": 47, "test_qwen3_models.py": 47, "test_llm_agents.py": 42, "test_pbt.py": 31,
              "test_report.py": 22, "test_search_outputs.py": 17, "test_journal.py": 14, "test_executors.py": 14,
              "test_packaging.py": 12}


def pytest_collection_modifyitems(config, items):
    """The longest files first: xdist hands out whole files (--dist loadfile; --no-loadscope-reorder keeps this
    order rather than its own by test count, which put the long one-test files last), and a long file handed out
    last leaves the other workers idle while it finishes."""
    slow_files = {item.fspath for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (-MEASURED_S.get(item.fspath.basename, 0), item.fspath not in slow_files))
