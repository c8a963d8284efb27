"""task.reward=auto: a reward function written by the agent's LLM (or picked among the built-ins offline), accepted
only after checks on held-out rows, saved in the search directory and replayed (llmzero/tasks/auto_reward.py)."""

import io
import json

import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from llm_server import LENIENT_REWARD, STRICT_REWARD, ScriptedLLMServer
from llmzero.app import run_search
from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.tasks.auto_reward import builtin_order, saved_reward, with_saved_reward
from llmzero.tasks.hub import TaskDataError
from llmzero.tasks.reward_check import Row, check_reward_file, judge, make_cases

KEY = "sk-reward-secret-7"

def apples(path, n=48, prompt_suffix=""):
    with open(path, "w") as fh:
        for i in range(n):
            a, b = i % 17 + 1, i % 11 + 2
            fh.write(json.dumps({"question": f"Tom has {a} apples and buys {b}. How many?{prompt_suffix}",
                                 "answer": str(a + b)}) + "\n")
    return path


def compose_cfg(*overrides):
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def quiet():
    return Console(file=io.StringIO(), width=200)


def test_judge_applies_the_rules_to_the_scores_returned():
    rows = [Row("What is 1+1?", "2"), Row("What is 2+2?", "4")]
    cases = make_cases(rows)
    kinds = [c["kind"] for c in cases]
    assert kinds[:4] == ["reference", "other", "reference", "other"] and kinds[-1] == "huge"
    # right answers 1, wrong 0, malformed 0: passes
    good = [{"case": i, "score": 1.0 if c["kind"] == "reference" else 0.0} for i, c in enumerate(cases)]
    assert judge(cases, good, rows).passed
    # another row's answer scoring 0.75 of the way up is not "low"; an echo of a prompt without the answer at the
    # top is a reward a model could earn by copying
    bad = [dict(r) for r in good]
    bad[1]["score"], bad[cases.index(next(c for c in cases if c["kind"] == "echo"))]["score"] = 0.75, 1.0
    report = judge(cases, bad, rows)
    assert not report.passed and any("scored 0.75 for row 1's answer" in p for p in report.problems)
    assert any("prompt echoed back scored the highest" in p for p in report.problems)
    flat = [{"case": i, "score": 0.5} for i in range(len(cases))]
    assert "does not tell a right answer from a wrong one" in judge(cases, flat, rows).reason()


def test_a_function_that_raises_or_hangs_is_rejected_with_where(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info=None):\n"
                   "    if len(solution_str) > 100000:\n        while True:\n            pass\n"
                   "    return 1.0 if solution_str[0] and ground_truth in solution_str else 0.0\n"
                   "def example_response(ground_truth, extra_info=None):\n    return 'it is ' + ground_truth\n")
    rows = [Row(f"What is {i} + 10?", str(i + 10)) for i in range(4)]
    report = check_reward_file(bad, "compute_score", rows, call_limit_s=0.5)
    assert not report.passed
    assert "the empty response: raised IndexError" in report.reason()
    assert "a 1000k-character response: took more than 0.5 s" in report.reason()
    missing = tmp_path / "missing.py"
    missing.write_text("def compute_score(a, b, c, d):\n    return 0.0\n")
    assert "defines no function example_response" in check_reward_file(missing, "compute_score", rows).reason()


def test_builtin_order_reads_the_rows():
    letters = [Row("Pick one. (A) x (B) y", "B"), Row("Pick one", "(c)")]
    assert builtin_order(letters, "answer", True)[0] == "choice"
    tagged = [Row("Answer in <answer></answer>.", "Paris")] * 3
    assert builtin_order(tagged, "answer", True) == ["tag", "exact"]
    numbers = [Row("Put it in \\boxed{}.", "12")] * 3
    assert builtin_order(numbers, "answer", True) == ["math", "boxed", "exact"]
    assert builtin_order(numbers, "answer", False) == ["boxed", "exact"]


def test_offline_auto_picks_a_builtin_trains_with_it_and_replays_it(tmp_path):
    data = apples(tmp_path / "apples.jsonl", prompt_suffix=" Put the answer in \\boxed{}.")
    overrides = ["task=dataset", f"task.data_files={data}", "task.fields.prompt=question", "task.reward=auto",
                 "+model.build.sft_steps=0", "task.train_size=32", "task.val_size=4", "task.test_size=4",
                 "hparams.response_length=8", "hparams.batch_size=4", "hparams.rollouts=2", "search.budget=1",
                 "hparams.max_steps=2", "search.display=false", "wandb.mode=disabled"]
    out = quiet()
    res = run_search(compose_cfg(*overrides), tmp_path / "run", out)
    record = saved_reward(tmp_path / "run")
    assert record["kind"] == "builtin" and record["name"] == "math" and record["checks"]["passed"]
    assert "reward: built-in verifier math accepted" in out.file.getvalue()
    assert res.tree[0].status == "completed" and res.tree[0].best_val is not None
    # the phase ran with the settled reward, and a phase job of the same search finds it too
    phase_cfg = json.loads((tmp_path / "run" / "nodes" / "0" / "phase_config.json").read_text())
    assert phase_cfg["task"]["reward"]["name"] == "math"
    assert with_saved_reward({"reward": "auto"}, tmp_path / "run")["reward"]["name"] == "math"
    with pytest.raises(TaskDataError, match="no accepted reward"):
        with_saved_reward({"reward": "auto"}, tmp_path / "elsewhere")


def test_the_llm_writes_a_reward_first_rejected_then_accepted_and_resume_replays_it(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    data = apples(tmp_path / "apples.jsonl")
    with ScriptedLLMServer() as server:
        overrides = ["trainer=synthetic", "trainer.step_delay_s=0", "cluster.poll_interval_s=0.01", "task=dataset",
                     f"task.data_files={data}", "task.fields.prompt=question", "task.reward=auto", "agent=claude",
                     f"agent.base_url={server.anthropic_base_url}", "agent.retry.backoff_s=0", "agent.on_failure=error",
                     "search.budget=1", "search.display=false", "wandb.mode=disabled"]
        server.push(LENIENT_REWARD, STRICT_REWARD)
        out = quiet()
        run_search(compose_cfg(*overrides), tmp_path / "run", out)
        record = saved_reward(tmp_path / "run")
        printed = out.file.getvalue()
        assert [a["verdict"].split(":")[0] for a in record["attempts"]] == ["rejected", "accepted"]
        assert "does not tell a right answer from a wrong one" in record["attempts"][0]["verdict"]
        assert "reward: attempt 1 rejected: every response scored 1" in printed
        assert record["kind"] == "file" and record["calls"] == 2 and record["usd"] > 0
        assert 'rfind("answer is")' in (tmp_path / "run" / "reward" / "reward.py").read_text()
        # the rejection reached the LLM, and the rows it was shown are not the ones it was checked on
        assert "does not tell a right answer" in server.requests[1].last_user_text()
        assert KEY not in json.dumps([json.loads(p.read_text())
                                      for p in (tmp_path / "run" / "reward" / "agent_calls").glob("*.json")])
        report = (tmp_path / "run" / "report.md").read_text()
        assert "## Reward" in report and "written by claude" in report and "attempt 1: rejected" in report
        calls = len(server.requests)
        out = quiet()
        run_search(compose_cfg(*overrides, f"search.resume={tmp_path / 'run'}"), tmp_path / "run",
                   out)
        assert len([r for r in server.requests[calls:] if "You write reward functions" in r.system_text()]) == 0
        assert "accepted before" in out.file.getvalue()


def test_an_llm_that_never_passes_ends_the_command_with_the_reasons(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    data = apples(tmp_path / "apples.jsonl")
    with ScriptedLLMServer() as server:
        server.push(LENIENT_REWARD, "I cannot write code today.")
        cfg = compose_cfg("trainer=synthetic", "task=dataset", f"task.data_files={data}", "task.fields.prompt=question",
                          "task.reward.name=auto", "task.reward.max_attempts=2", "agent=claude",
                          f"agent.base_url={server.anthropic_base_url}", "agent.retry.backoff_s=0",
                          "search.display=false", "wandb.mode=disabled")
        from llmzero.config.schema import ConfigError
        with pytest.raises(ConfigError, match=r"wrote no reward that passes the checks in 2 attempt\(s\)"):
            run_search(cfg, tmp_path / "run", quiet())
    assert saved_reward(tmp_path / "run") is None and (tmp_path / "run" / "reward" / "attempts" / "01.py").is_file()
