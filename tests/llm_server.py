"""A FAKE LLM HTTP server for tests: it stands in for the Anthropic Messages API and the OpenAI
chat-completions API, because tests have no network. The real ``anthropic`` SDK and the real
``litellm`` client talk to it over HTTP on 127.0.0.1, so client code runs end to end unmodified.

Replies come from a script (one FIFO queue shared by both APIs)::

    with ScriptedLLMServer() as server:
        server.push("first answer", Reply(status=529, headers={"retry-after": "0"}), "second")
        client = anthropic.Anthropic(api_key="k", base_url=server.anthropic_base_url)
        ...
        server.requests[0].user_text()

Usage figures are counted with a real tokenizer (litellm's bundled gpt-4o encoding, offline)
plus Anthropic's image estimate (width * height / 750 per image), so they are plausible, not exact.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch the cost map

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ANTHROPIC_ERROR_TYPES = {529: "overloaded_error", 429: "rate_limit_error", 400: "invalid_request_error",
                          401: "authentication_error", 404: "not_found_error"}


@dataclass
class Reply:
    """One scripted answer: assistant ``text`` with ``status`` 200, or an error status. ``body``
    (if given) is sent verbatim instead of the generated one; ``headers`` go out either way."""
    text: str | None = None
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: dict | None = None


def _texts(content: Any) -> list[str]:
    """Text parts of a message content (a str, or a list of Anthropic blocks / OpenAI parts)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    return [part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"]


def _image_payloads(content: Any) -> list[str]:
    out = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image" and part.get("source", {}).get("type") == "base64":
            out.append(part["source"]["data"])
        elif part.get("type") == "image_url":
            url = part["image_url"] if isinstance(part["image_url"], str) else part["image_url"].get("url", "")
            if url.startswith("data:") and ";base64," in url:
                out.append(url.split(";base64,", 1)[1])
    return out


@dataclass
class Recorded:
    """One request the fake received. ``api`` is "anthropic" or "openai"; header keys are lower-case."""
    api: str
    path: str
    headers: dict
    body: dict

    def api_key(self) -> str | None:
        """The key the client sent: ``x-api-key``, else the ``authorization: Bearer`` token (anthropic
        2.14 sends its api_key as a Bearer token; litellm/openai always does)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def messages(self) -> list[dict]:
        return list(self.body.get("messages") or [])

    def system_blocks(self) -> list[dict]:
        """System prompt as text blocks (OpenAI system messages become blocks without cache_control)."""
        if self.api == "anthropic":
            system = self.body.get("system")
            if system is None:
                return []
            if isinstance(system, str):
                return [{"type": "text", "text": system}]
            return [b for b in system if isinstance(b, dict) and b.get("type") == "text"]
        return [{"type": "text", "text": t} for m in self.messages() if m.get("role") == "system"
                for t in _texts(m.get("content"))]

    def system_text(self) -> str:
        return "\n".join(b.get("text", "") for b in self.system_blocks())

    def user_text(self) -> str:
        return "\n".join(t for m in self.messages() if m.get("role") == "user" for t in _texts(m.get("content")))

    def last_user_text(self, containing: tuple[str, ...] = ()) -> str:
        """The newest user turn (with `containing`, the newest holding one of those texts): what a conversation's
        latest request asks, past any re-ask."""
        for m in reversed([m for m in self.messages() if m.get("role") == "user"]):
            text = "\n".join(_texts(m.get("content")))
            if not containing or any(c in text for c in containing):
                return text
        return ""

    def images(self) -> list[str]:
        """Base64 payloads of every inline image in the messages, in order."""
        return [img for m in self.messages() for img in _image_payloads(m.get("content"))]


def count_tokens(text: str) -> int:
    if not text:
        return 0
    import litellm  # slow import (~4 s); deferred so importing this module stays cheap
    return int(litellm.token_counter(model="gpt-4o", text=text))


def image_tokens(b64: str) -> int:
    """Anthropic's estimate, width * height / 750, from the PNG IHDR chunk (0 if not a PNG)."""
    try:
        data = base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4))
    except ValueError:
        return 0
    if data[:8] != _PNG_SIGNATURE or len(data) < 24:
        return 0
    width, height = struct.unpack(">II", data[16:24])
    return max(1, math.ceil(width * height / 750))


class ScriptedLLMServer:
    """Fake Anthropic + OpenAI endpoint on 127.0.0.1 (see module docstring). Use as a context manager."""

    def __init__(self, default: Callable[[Recorded], str | Reply] | None = None, port: int = 0):
        self.default = default
        self.port = port  # 0: any free port
        self.requests: list[Recorded] = []
        self._queue: list[str | Reply] = []
        self._lock = threading.Lock()
        self._seen_cache_prefixes: set[str] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> "ScriptedLLMServer":
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def anthropic_base_url(self) -> str:
        return self.base_url  # the SDK posts to base_url + "/v1/messages"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"  # the openai SDK (under litellm) posts to api_base + "/chat/completions"

    # -- script ------------------------------------------------------------------------------
    def push(self, *replies: str | Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next_reply(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            reply = self._queue.pop(0) if self._queue else None
        if reply is None:
            if self.default is None:
                return Reply(status=500, text="ScriptedLLMServer: the script ran out of replies (no default set)")
            reply = self.default(rec)
        return Reply(text=reply) if isinstance(reply, str) else reply

    # -- usage -------------------------------------------------------------------------------
    def _usage(self, rec: Recorded, text: str) -> dict:
        blocks = rec.system_blocks()
        last_cached = max((i for i, b in enumerate(blocks) if b.get("cache_control")), default=-1)
        cached_text = "\n".join(b.get("text", "") for b in blocks[:last_cached + 1])
        rest = [b.get("text", "") for b in blocks[last_cached + 1:]]
        if rec.api == "openai":  # system text already counted via blocks; skip system messages
            rest += [t for m in rec.messages() if m.get("role") != "system" for t in _texts(m.get("content"))]
        else:
            rest += [t for m in rec.messages() for t in _texts(m.get("content"))]
        input_tokens = count_tokens("\n".join(rest)) + sum(image_tokens(i) for i in rec.images())
        cached = count_tokens(cached_text)
        with self._lock:
            first = cached_text not in self._seen_cache_prefixes
            if cached:
                self._seen_cache_prefixes.add(cached_text)
        return {"input_tokens": input_tokens, "output_tokens": count_tokens(text),
                "cache_creation_input_tokens": cached if first else 0,
                "cache_read_input_tokens": 0 if first else cached}

    def respond(self, api: str, path: str, headers: dict, body: dict) -> tuple[int, dict, dict]:
        rec = Recorded(api=api, path=path, headers=headers, body=body)
        reply = self._next_reply(rec)
        if reply.body is not None:
            return reply.status, reply.headers, reply.body
        model = body.get("model", "fake-model")
        if reply.status != 200:
            message = reply.text or f"scripted error {reply.status}"
            if api == "anthropic":
                err_type = _ANTHROPIC_ERROR_TYPES.get(reply.status, "api_error")
                return reply.status, reply.headers, {"type": "error", "error": {"type": err_type, "message": message}}
            err_type = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(reply.status, "server_error")
            return reply.status, reply.headers, {"error": {"message": message, "type": err_type, "code": err_type}}
        text = reply.text or ""
        usage = self._usage(rec, text)
        if api == "anthropic":
            return 200, reply.headers, {
                "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": usage}
        prompt = usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
        return 200, reply.headers, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": usage["output_tokens"],
                      "total_tokens": prompt + usage["output_tokens"],
                      "prompt_tokens_details": {"cached_tokens": 0}}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response carries Content-Length
    server_owner: ScriptedLLMServer

    def log_message(self, format, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, headers: dict, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        api = {"/v1/messages": "anthropic", "/v1/chat/completions": "openai", "/chat/completions": "openai"}.get(path)
        if api is None:
            return self._send(404, {}, {"error": {"type": "not_found", "message": f"no route for POST {path}"}})
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            return self._send(400, {}, {"error": {"type": "invalid_request_error", "message": str(exc)}})
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, extra, payload = self.server_owner.respond(api, path, headers, body)
        except Exception as exc:  # a bug in a test's default callable: surface it as a 500
            status, extra, payload = 500, {}, {"error": {"type": "api_error", "message": f"fake server: {exc!r}"}}
        self._send(status, extra, payload)

    def do_GET(self) -> None:
        self._send(404, {}, {"error": {"type": "not_found", "message": f"no route for GET {self.path}"}})


class SkillBrain:
    """A scripted model for the skill-based agent baseline (llmzero/agents/llm/skill_agent.py), reading only what
    its prompts show: job 1 is the default configuration, job 2 resumes job 1's last checkpoint with half the
    learning rate and is stopped at its second check, job 3 restarts from scratch, and then it gathers the results.
    Like any model it answers from the conversation it is sent."""

    def __init__(self, jobs: int = 3):
        self.jobs, self.checks = jobs, {}

    def __call__(self, rec: Recorded) -> str:
        user = rec.last_user_text(("# check-training: job", "# Planning job"))
        if "# check-training: job" in user:
            job = int(re.search(r"check-training: job (\d+)", user).group(1))
            self.checks[job] = self.checks.get(job, 0) + 1
            stop = job == 1 and self.checks[job] >= 2
            return json.dumps({"decision": "STOP" if stop else "CONTINUE", "reason": "scripted check",
                               "verdicts": {"learning_rate": "DECREASE" if stop else "KEEP"}})
        job = int(re.search(r"# Planning job (\d+)", user).group(1))
        if job > self.jobs:
            return json.dumps({"skill": "gather-results", "rationale": "scripted: the jobs are done"})
        if job == 2:
            last = re.search(r"checkpoints at steps \[([0-9, ]+)\]", user)
            step = int(last.group(1).split(",")[-1]) if last else None
            lr = float(re.search(r"learning_rate: ([0-9.e-]+)", rec.system_text()).group(1))
            return json.dumps({"skill": "submit-training", "diagnosis": "scripted: val rises slowly",
                               "verdicts": {"learning_rate": "DECREASE"}, "resume_node": 0, "resume_step": step,
                               "changes": {"learning_rate": lr / 2}, "rationale": "scripted: tune and resume"})
        return json.dumps({"skill": "submit-training", "diagnosis": "scripted", "resume_node": None,
                           "changes": {}, "rationale": f"scripted job {job}"})


LENIENT_REWARD = '''```python
def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    return 1.0


def example_response(ground_truth, extra_info=None):
    return "The answer is " + str(ground_truth)
```'''
STRICT_REWARD = '''Here is the file.
```python
import re


def _norm(text):
    return " ".join(re.sub(r"[^\\w\\s.-]", " ", str(text).lower()).split()).rstrip(".")


def compute_score(data_source, solution_str, ground_truth, extra_info=None):
    text = str(solution_str)[-4000:]
    found = text.lower().rfind("answer is")
    if found < 0:
        return 0.0
    return 1.0 if _norm(text[found + 9:]) == _norm(ground_truth) else 0.0


def example_response(ground_truth, extra_info=None):
    return "The answer is " + str(ground_truth)
```'''


class RewardBrain:
    """A scripted model for `task.reward=auto` (llmzero/agents/llm/reward_writer.py): its first file pays for any
    response (the checks reject it), every later one reads "the answer is X" at the response's end."""

    def __init__(self) -> None:
        self.files = 0

    def __call__(self, rec: Recorded) -> str:
        self.files += 1
        return LENIENT_REWARD if self.files == 1 else STRICT_REWARD


class FakeModel:
    """The server's default model when run as a script: reward files for task.reward=auto, CONTINUE for the early
    stopper, the skill agent's plans; to the search's proposer and error analyzer a reply that is no answer, so the
    search's heuristic agent answers for it."""

    def __init__(self, jobs: int = 3) -> None:
        self.reward, self.skill = RewardBrain(), SkillBrain(jobs)

    def __call__(self, rec: Recorded) -> str:
        system = rec.system_text()
        if "You write reward functions" in system:
            return self.reward(rec)
        if "early stopper" in system:
            return json.dumps({"decision": "CONTINUE", "reason": "scripted"})
        if "# Planning job" in rec.user_text() or "# check-training: job" in rec.user_text():
            return self.skill(rec)
        return "The scripted model has no answer for this role."


def main(argv: list[str] | None = None) -> None:
    """Serve the FAKE provider on 127.0.0.1 until interrupted: `python tests/llm_server.py --port 8765`."""
    import argparse

    parser = argparse.ArgumentParser(description="A FAKE Anthropic/OpenAI endpoint with a scripted model, for "
                                                 "trying sweeper.mode=skill_agent and task.reward=auto without a "
                                                 "network.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--jobs", type=int, default=3, help="jobs the scripted model submits before it gathers")
    args = parser.parse_args(argv)
    with ScriptedLLMServer(default=FakeModel(args.jobs), port=args.port) as server:
        print(f"FAKE LLM server on {server.base_url} (OpenAI: {server.openai_base_url}); Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
