"""PaperSearchQA (llmzero/tasks/papersearchqa.py) on a fixture in the dataset's schema, and its retrieval
(llmzero/tasks/retrieval.py): the real bm25s index, served over real HTTP on 127.0.0.1 in Search-R1's shape."""

import json
import threading
import urllib.request
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from llmzero.config.hydra_store import register_configs
from llmzero.paths import conf_dir
from llmzero.tasks.base import Example, build_task
from llmzero.tasks.benchmark import pack
from llmzero.tasks.hub import TaskDataError
from llmzero.tasks.papersearchqa import PaperSearchQATask, final_answer, normalize
from llmzero.tasks.retrieval import BM25Retriever, HTTPRetriever, SearchTool, serve

FIXTURES = Path(__file__).parent / "fixtures" / "tasks"
QA, CORPUS = FIXTURES / "papersearchqa.jsonl", FIXTURES / "pubmed_corpus.jsonl"


@pytest.fixture(scope="module")
def task():
    return PaperSearchQATask(data_files=str(QA), seed=0, retriever={"corpus": str(CORPUS)})


@pytest.fixture(scope="module")
def server():
    srv = serve(BM25Retriever.from_file(CORPUS), port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


CF = Example("…", pack(answer="CFTR", golden=["CFTR", "cystic fibrosis transmembrane conductance regulator"]), "genetics")


@pytest.mark.parametrize("completion, reward", [
    ("<answer> CFTR </answer>", 1.0),
    ("<answer>Cystic fibrosis transmembrane conductance regulator.</answer>", 1.0),  # a golden-answer synonym
    ("<answer> the CFTR </answer>", 1.0),  # articles and punctuation do not count
    ("<answer> CFTR gene </answer>", 0.0),  # exact match, not containment
    ("<answer> insulin </answer> then <answer> CFTR </answer>", 1.0),  # the last answer counts
    ("<think><answer> CFTR </answer></think><answer> ENaC </answer>", 0.0),  # an answer while thinking never counts
    ("<search> cf gene </search>\n<information>Doc 1 says <answer> CFTR </answer></information>\n", 0.0),  # retrieved
    ("CFTR", 0.0),  # no <answer> tag
])
def test_reward_is_exact_match_of_the_models_last_answer(task, completion, reward):
    assert task.reward(completion, CF) == reward


def test_the_prompts_own_example_answer_is_never_the_answer(task):
    example = next(ex for split in task.splits().values() for ex in split)
    assert "<answer> insulin </answer>" in example.prompt  # the instruction's example
    insulin = Example(example.prompt, pack(answer="insulin", golden=["insulin"]), "endocrinology")
    assert task.reward("I am not sure.", insulin) == 0.0  # the response alone is scored, never the prompt
    assert task.reward(example.prompt + "I am not sure.", insulin) == 0.0  # even echoed back, it is the example
    assert final_answer("<answer> a </answer> <answer> b </answer>") == "b"


def test_normalisation_is_search_r1s():
    assert normalize("  The  Epstein-Barr Virus! ") == "epsteinbarr virus"
    assert normalize("An apple, a day") == "apple day"


def test_the_fixture_is_split_with_subscores_per_category_and_a_hand_computed_aggregate(task):
    splits = task.splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 20, "val": 2, "test": 2}
    assert "oncology" in task.subtasks and "infectious_disease" in task.subtasks
    examples = [CF, Example("…", pack(answer="p53", golden=["p53", "TP53"]), "oncology"),
                Example("…", pack(answer="HER2", golden=["HER2"]), "oncology")]
    scores = task.score(["<answer>CFTR</answer>", "<answer>TP53</answer>", "<answer>EGFR</answer>"], examples)
    # by hand: genetics 1/1, oncology 1/2; the aggregate is the accuracy over the 3 examples = 2/3
    assert scores == pytest.approx({"score": 2 / 3, "genetics": 1.0, "oncology": 0.5})


def test_closed_book_has_no_tool_and_no_search_instruction():
    closed = PaperSearchQATask(data_files=str(QA), search_tool=False)
    assert closed.tool() is None
    assert "<search>" not in closed.splits()["train"][0].prompt


def test_bm25_finds_the_abstract_that_answers(task):
    tool = task.tool()
    assert isinstance(tool, SearchTool) and (tool.topk, tool.max_turns) == (3, 2)
    hits = tool.retriever.retrieve(["cystic fibrosis gene mutated", "zzzz qqqq"], 3)
    assert "CFTR" in hits[0][0]["document"]["contents"] and hits[1] == []
    assert tool.query("thinking <search> cystic fibrosis gene </search>") == "cystic fibrosis gene"
    assert tool.query("<search> unfinished") is None
    info = tool.respond(["cystic fibrosis gene"])[0]
    assert info.strip().startswith("<information>Doc 1 (Title: CFTR mutations in cystic fibrosis)")


def test_the_retrieval_server_speaks_search_r1s_http_shape(server):
    body = json.dumps({"queries": ["malaria parasite", "tuberculosis bacterium"], "topk": 2, "return_scores": True})
    request = urllib.request.Request(server + "/retrieve", data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        result = json.loads(response.read())["result"]
    assert len(result) == 2 and len(result[0]) <= 2
    assert "Plasmodium" in result[0][0]["document"]["contents"] and isinstance(result[0][0]["score"], float)
    assert set(result[1][0]["document"]) == {"id", "contents"}
    remote = HTTPRetriever(server).retrieve(["Which hormone lowers blood glucose insulin"], 3)
    assert "insulin" in remote[0][0]["document"]["contents"].lower()


def test_task_retriever_url_uses_a_running_server(server):
    remote = PaperSearchQATask(data_files=str(QA), retriever={"url": server, "topk": 1})
    info = remote.tool().respond(["Which virus causes infectious mononucleosis"])[0]
    assert "Epstein-Barr" in info and info.count("Doc ") == 1


def test_an_unreachable_server_is_named():
    with pytest.raises(RuntimeError, match="task.retriever.url=http://127.0.0.1:9/retrieve"):
        HTTPRetriever("http://127.0.0.1:9", timeout=2).retrieve(["q"], 3)


def test_the_tool_without_documents_says_what_to_set():
    with pytest.raises(TaskDataError, match="task.retriever.url.*task.retriever.corpus.*task.search_tool=false"):
        PaperSearchQATask(data_files=str(QA), retriever={}).tool()


def test_without_bm25s_the_task_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bm25s" else real(name, *a))
    with pytest.raises(TaskDataError, match=r"pip install 'llmzero\[search\]'"):
        PaperSearchQATask(data_files=str(QA), retriever={"corpus": str(CORPUS)})
    PaperSearchQATask(data_files=str(QA), retriever={"url": "http://127.0.0.1:9"})  # a server needs no bm25s


def test_task_papersearchqa_composes_with_hydra():
    register_configs()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
        cfg = compose(config_name="config", overrides=["task=papersearchqa", f"task.data_files={QA}",
                                                       f"task.retriever.corpus={CORPUS}", "task.retriever.topk=2"])
        with pytest.raises(Exception, match="task.retriever.topk"):
            from llmzero.config.schema import TaskConfig, typed

            typed(TaskConfig, compose(config_name="config", overrides=["task=papersearchqa",
                                                                       "task.retriever.topk=0"]).task, "task")
    assert cfg.task.dataset == "jmhb/PaperSearchQA" and cfg.task.search_tool is True
    built = build_task(OmegaConf.to_container(cfg.task, resolve=True))
    assert isinstance(built, PaperSearchQATask) and built.tool().topk == 2
