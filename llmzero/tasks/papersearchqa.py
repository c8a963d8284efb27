"""PaperSearchQA (paper §4.1, Appendix B.1): biomedical questions answered from PubMed, with a search tool.

Hub rows (`jmhb/PaperSearchQA`, train 54,907 and test 5,000): `question`, `answer`, `golden_answers` (the answer
and its synonyms), `cat` (the question's category), `cat_num`, `pmid`, `paper_title`, ... The model answers inside
`<answer>…</answer>`; the reward is 1 when the last answer of the response, after any thinking and outside any
retrieved `<information>`, equals one of the golden answers after normalisation (lower case, punctuation and the
articles a/an/the removed, whitespace collapsed) — the exact-match score of Search-R1. Subscores per `cat`; the
aggregate `score` is the accuracy over all examples.

Search tool (`task.search_tool=true`, the paper's setting): in the Search-R1 protocol, the model may write
`<search>query</search>` and reads the top `task.retriever.topk` documents inside `<information>…</information>`,
at most `task.retriever.max_turns` times per response (`SearchTool`, llmzero/tasks/retrieval.py). Documents come from
the Search-R1 retrieval server at `task.retriever.url`, or from a BM25 index built here over `task.retriever.corpus`
(a JSONL of {"id", "contents"} documents, or a hub dataset of them; the paper searches PubMed,
`jmhb/pubmed_bioasq_2022`). `task.search_tool=false` is closed-book QA: no tool, no search instruction.
"""

from __future__ import annotations

import importlib.util
import re
import string
from pathlib import Path
from typing import Any

from ..config.schema import RetrieverConfig
from .answers import final_part, last_tag
from .base import Example
from .benchmark import BenchmarkTask, missing_extra, pack, unpack
from .hub import TaskDataError, load_rows
from .retrieval import BM25Retriever, HTTPRetriever, Retriever, SearchTool

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_INFORMATION = re.compile(r"<information>.*?(</information>|$)", re.DOTALL | re.IGNORECASE)

SEARCH_INSTRUCTION = (
    "Answer the question. Reason step by step. To look something up in PubMed abstracts, write <search> query "
    "</search>; the best matches come back between <information> and </information>. Give only the final answer "
    "between <answer> and </answer>, for example <answer> insulin </answer>.")
CLOSED_INSTRUCTION = (
    "Answer the question. Reason step by step, then give only the final answer between <answer> and </answer>, for "
    "example <answer> insulin </answer>.")


def normalize(text: str) -> str:
    """Search-R1's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in str(text).lower() if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def final_answer(completion: str) -> str | None:
    """The last <answer> the model itself wrote after thinking (retrieved documents never count)."""
    return last_tag(final_part(_INFORMATION.sub(" ", completion)), "answer")


def category_name(cat: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(cat or "").lower()).strip("_") or "other"


def golden_list(row: dict[str, Any]) -> list[str]:
    golden = row.get("golden_answers")
    if isinstance(golden, str):
        golden = [golden]
    answers = [str(a) for a in (golden or []) if str(a).strip()]
    if row.get("answer") is not None and str(row["answer"]).strip() and str(row["answer"]) not in answers:
        answers.insert(0, str(row["answer"]))
    return answers


class PaperSearchQATask(BenchmarkTask):
    dataset_id = "jmhb/PaperSearchQA"
    columns = ("question",)

    def __init__(self, name: str = "papersearchqa", search_tool: bool | None = True,
                 retriever: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.search_tool = bool(search_tool)
        self.retriever_options = dict(retriever or {})
        if self.search_tool and not self.retriever_options.get("url") and importlib.util.find_spec("bm25s") is None:
            raise missing_extra(name, "bm25s", "search", "the BM25 index of the search tool; or set "
                                "task.retriever.url=<a Search-R1 retrieval server>")
        self._tool: SearchTool | None = None

    def to_example(self, row: dict[str, Any]) -> Example:
        golden = golden_list(row)
        if not golden:
            raise ValueError("the row has neither an answer nor golden_answers")
        instruction = SEARCH_INSTRUCTION if self.search_tool else CLOSED_INSTRUCTION
        return Example(prompt=f"{instruction}\n\nQuestion: {str(row['question']).strip()}\n",
                       answer=pack(answer=golden[0], golden=golden), subtask=category_name(row.get("cat")))

    def reward(self, completion: str, example: Example) -> float:
        if example.prompt and example.prompt in completion:  # a backend that scores prompt + response: the prompt's
            completion = completion.rsplit(example.prompt, 1)[1]  # own example <answer> is not the model's answer
        got = final_answer(completion)
        if got is None:
            return 0.0
        rec = unpack(example.answer)
        return 1.0 if normalize(got) in {normalize(g) for g in rec.get("golden") or [rec.get("answer", "")]} else 0.0

    def reference(self, example: Example) -> str:
        """With the tool, a response that searches for the question once, reads the documents and answers."""
        answer = f"<answer> {unpack(example.answer).get('answer', '')} </answer>"
        tool = self.tool()
        if tool is None or tool.max_turns < 1:
            return answer
        question = example.prompt.rsplit("Question:", 1)[-1].strip()
        return f"<search> {question} </search>{tool.respond([question])[0]}{answer}"

    def tool(self) -> SearchTool | None:
        """The search tool of the rollouts (None when closed-book); the index is built on first use."""
        if not self.search_tool:
            return None
        if self._tool is None:
            opts = RetrieverConfig(**self.retriever_options)  # the schema's defaults and checks
            self._tool = SearchTool(self._retriever(), topk=opts.topk, max_turns=opts.max_turns)
        return self._tool

    def _retriever(self) -> Retriever:
        opts = self.retriever_options
        if opts.get("url"):
            return HTTPRetriever(str(opts["url"]))
        corpus = opts.get("corpus")
        if not corpus:
            raise TaskDataError(f"task={self.name}: the search tool needs task.retriever.url (a Search-R1 retrieval "
                                f"server) or task.retriever.corpus (a JSONL of {{\"id\", \"contents\"}} documents, or "
                                f"a hub dataset of them); or set task.search_tool=false for closed-book QA")
        path = Path(str(corpus)).expanduser()
        if path.is_file():
            try:
                return BM25Retriever.from_file(path)
            except (OSError, ValueError) as exc:
                raise TaskDataError(f"task.retriever.corpus={corpus}: {exc}") from None
        rows = [r for split in load_rows(self.name, str(corpus)).values() for r in split]
        docs = [{"id": str(r.get("id", i)), "contents": str(r.get("contents") or
                 f"\"{r.get('title', '')}\"\n{r.get('text', r.get('abstract', ''))}")} for i, r in enumerate(rows)]
        return BM25Retriever(docs)
