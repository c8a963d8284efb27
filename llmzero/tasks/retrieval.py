"""Retrieval for PaperSearchQA's search tool, behind the HTTP shape of Search-R1's retrieval server.

    POST /retrieve  {"queries": [str, ...], "topk": int, "return_scores": bool}
                 -> {"result": [[{"document": {"id": str, "contents": str}, "score": float}, ...], ...]}

so `task.retriever.url` can name an existing Search-R1 server (e.g. its dense E5 index over PubMed), or our own
BM25 server started with

    python -m llmzero.tasks.retrieval --corpus pubmed.jsonl --port 8000

over a JSONL corpus of `{"id", "contents"}` documents (Search-R1's corpus format: `contents` is the title in
quotes, a newline, then the text). Without a url the task builds the same BM25 index in-process (`BM25Retriever`),
as the tests do. BM25 is bm25s's (`pip install 'llmzero[search]'`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import urllib.request
import re
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol, Sequence

__all__ = ["BM25Retriever", "HTTPRetriever", "Retriever", "SearchTool", "format_documents", "read_corpus", "serve"]

log = logging.getLogger("llmzero.retrieval")

Hit = dict[str, Any]  # {"document": {"id", "contents"}, "score": float}


class Retriever(Protocol):
    def retrieve(self, queries: Sequence[str], topk: int) -> list[list[Hit]]: ...


def read_corpus(path: str | Path) -> list[dict[str, str]]:
    """`{"id", "contents"}` documents from a JSONL file (a `title` + `text` pair is joined the Search-R1 way)."""
    docs = []
    with open(Path(path).expanduser(), encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}: line {number} is not JSON ({exc})") from None
            contents = row.get("contents")
            if contents is None and ("title" in row or "text" in row):
                contents = f"\"{row.get('title', '')}\"\n{row.get('text', '')}"
            if not isinstance(contents, str):
                raise ValueError(f"{path}: line {number} has no 'contents' (or 'title'/'text') string")
            docs.append({"id": str(row.get("id", number - 1)), "contents": contents})
    if not docs:
        raise ValueError(f"{path} holds no documents")
    return docs


class BM25Retriever:
    """bm25s over the corpus's `contents`, English stopwords removed; built once, queried in batches."""

    def __init__(self, docs: list[dict[str, str]]) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs each index build at DEBUG level
        self._bm25s = bm25s
        self.docs = docs
        self.index = bm25s.BM25()
        self.index.index(bm25s.tokenize([d["contents"] for d in docs], stopwords="en", show_progress=False),
                         show_progress=False)

    @classmethod
    def from_file(cls, path: str | Path) -> BM25Retriever:
        return cls(read_corpus(path))

    def retrieve(self, queries: Sequence[str], topk: int) -> list[list[Hit]]:
        k = max(1, min(int(topk), len(self.docs)))
        tokens = self._bm25s.tokenize(list(queries), stopwords="en", return_ids=False, show_progress=False)
        known = self.index.vocab_dict
        out: list[list[Hit]] = []
        for query in tokens:
            words = [w for w in query if w in known]
            if not words:  # nothing in the query occurs in the corpus
                out.append([])
                continue
            idx, scores = self.index.retrieve([words], k=k, show_progress=False)
            out.append([{"document": self.docs[int(i)], "score": float(s)}
                        for i, s in zip(idx[0], scores[0]) if float(s) > 0])
        return out


class HTTPRetriever:
    """A Search-R1-style retrieval server at `url` (its `/retrieve` endpoint)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        if not self.url.endswith("/retrieve"):
            self.url += "/retrieve"
        self.timeout = timeout

    def retrieve(self, queries: Sequence[str], topk: int) -> list[list[Hit]]:
        body = json.dumps({"queries": list(queries), "topk": int(topk), "return_scores": True}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"task.retriever.url={self.url}: the retrieval server did not answer ({exc})") from None
        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, list) or len(result) != len(queries):
            raise RuntimeError(f"task.retriever.url={self.url}: expected {{'result': [one list per query]}}, got "
                               f"{str(payload)[:200]}")
        # a server asked without scores answers bare documents; both shapes are read
        return [[hit if isinstance(hit, dict) and "document" in hit else {"document": hit, "score": None}
                 for hit in hits] for hits in result]


def format_documents(hits: list[Hit], max_chars: int | None = None) -> str:
    """The retrieved documents as the model reads them inside <information>: numbered, title first."""
    lines = []
    for i, hit in enumerate(hits, 1):
        contents = str((hit.get("document") or {}).get("contents", ""))
        title, _, text = contents.partition("\n")
        line = f"Doc {i} (Title: {title.strip().strip(chr(34))}) {text.strip()}" if text else f"Doc {i} {title}"
        lines.append(line[:max_chars] if max_chars else line)
    return "\n".join(lines) if lines else "No documents found."


@dataclass
class SearchTool:
    """The Search-R1 protocol as a trainer's rollout loop uses it: generation pauses when the text ends with
    `</search>`; the query inside is answered with `<information>` holding the top `topk` documents; at most
    `max_turns` searches per response (the paper: 3 documents, 2 turns)."""

    retriever: Retriever
    topk: int = 3
    max_turns: int = 2
    max_doc_chars: int = 2000
    stop: str = "</search>"

    def query(self, text: str) -> str | None:
        """The query of a response that has just closed a search call (it ends with `</search>`), else None."""
        if not text.rstrip().endswith(self.stop):
            return None
        found = re.findall(r"<search>(.*?)</search>", text, flags=re.DOTALL)
        return found[-1].strip() if found else None

    def respond(self, queries: Sequence[str]) -> list[str]:
        """The text put after each search call: the documents inside <information>, on lines of their own."""
        hits = self.retriever.retrieve(list(queries), self.topk) if queries else []
        return [f"\n\n<information>{format_documents(h, self.max_doc_chars)}</information>\n\n" for h in hits]


def _handler(retriever: Retriever, default_topk: int) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            if self.path.rstrip("/") != "/retrieve":
                self._send(404, {"error": f"no route {self.path}; POST /retrieve"})
                return
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                queries = request["queries"]
                if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
                    raise ValueError("'queries' must be a list of strings")
                topk = int(request.get("topk") or default_topk)
            except (KeyError, TypeError, ValueError) as exc:
                self._send(400, {"error": f"bad request: {exc}"})
                return
            hits = retriever.retrieve(queries, topk)
            if not request.get("return_scores", False):
                hits = [[h["document"] for h in row] for row in hits]
            self._send(200, {"result": hits})

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

    return Handler


def serve(retriever: Retriever, host: str = "127.0.0.1", port: int = 8000, topk: int = 3) -> ThreadingHTTPServer:
    """A retrieval server (not yet serving: call serve_forever, or run it in a thread; port 0 picks a free one)."""
    return ThreadingHTTPServer((host, port), _handler(retriever, topk))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmzero.tasks.retrieval",
                                     description="A BM25 retrieval server in Search-R1's /retrieve shape.")
    parser.add_argument("--corpus", required=True, help="JSONL of {\"id\", \"contents\"} documents")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--topk", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        retriever = BM25Retriever.from_file(args.corpus)
    except (OSError, ValueError) as exc:
        print(f"llmzero retrieval: error: --corpus {args.corpus}: {exc}", file=sys.stderr)
        return 2
    server = serve(retriever, args.host, args.port, args.topk)
    log.info("BM25 over %d documents at http://%s:%d/retrieve", len(retriever.docs), *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
