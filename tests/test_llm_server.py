"""The fake LLM server (tests/llm_server.py) speaks the Anthropic and OpenAI protocols well enough
for the real `anthropic` SDK and the real `litellm` client, with no network."""

import base64
import struct
import zlib

import pytest

from llm_server import Reply, ScriptedLLMServer, image_tokens

anthropic = pytest.importorskip("anthropic")


def tiny_png(width=4, height=3) -> str:
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))  # filter 0, red RGB rows
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return base64.b64encode(png).decode()


@pytest.fixture
def server():
    with ScriptedLLMServer() as s:
        yield s


def _anthropic_call(server, max_retries=0, text="hi"):
    client = anthropic.Anthropic(api_key="test-key", base_url=server.anthropic_base_url, max_retries=max_retries)
    return client.messages.create(
        model="claude-sonnet-4-6", max_tokens=100,
        system=[{"type": "text", "text": "static", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": text},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": tiny_png(30, 50)}}]}])


def test_anthropic_sdk_round_trip_records_request_and_usage(server):
    server.push("scripted answer", "again")
    msg = _anthropic_call(server)
    assert msg.content[0].text == "scripted answer"
    assert msg.stop_reason == "end_turn"
    u = msg.usage
    assert u.input_tokens >= 1 + image_tokens(tiny_png(30, 50)) and u.output_tokens > 0
    assert u.cache_creation_input_tokens > 0 and u.cache_read_input_tokens == 0
    rec = server.requests[0]
    assert (rec.api, rec.path) == ("anthropic", "/v1/messages")
    assert rec.system_text() == "static" and rec.user_text() == "hi"
    assert rec.images() == [tiny_png(30, 50)] and image_tokens(rec.images()[0]) == 2  # 30*50/750
    assert rec.api_key() == "test-key"  # anthropic 2.14 sends it as "authorization: Bearer test-key"
    assert rec.headers.get("x-api-key", rec.headers.get("authorization")).endswith("test-key")
    second = _anthropic_call(server).usage  # same cached system prefix: now a cache read
    assert second.cache_read_input_tokens == u.cache_creation_input_tokens and second.cache_creation_input_tokens == 0
    assert second.input_tokens == u.input_tokens


def test_anthropic_overloaded_then_sdk_retry_succeeds(server):
    server.push(Reply(status=529, headers={"retry-after": "0"}))
    with pytest.raises(anthropic.APIStatusError) as info:
        _anthropic_call(server, max_retries=0)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"
    server.push(Reply(status=529, headers={"retry-after": "0"}), "recovered")
    assert _anthropic_call(server, max_retries=1).content[0].text == "recovered"
    assert len(server.requests) == 3 and server.pending() == 0


def test_script_exhausted_uses_default_or_500(server):
    server.push("only one")
    assert _anthropic_call(server).content[0].text == "only one"
    with pytest.raises(anthropic.InternalServerError, match="ran out"):
        _anthropic_call(server)
    server.default = lambda rec: f"echo: {rec.user_text()}"
    assert _anthropic_call(server, text="ping").content[0].text == "echo: ping"


def _litellm_call(litellm, server, **kwargs):
    return litellm.completion(
        model="openai/test-model", api_base=server.openai_base_url, api_key="k", max_tokens=50,
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": [
                      {"type": "text", "text": "describe"},
                      {"type": "image_url", "image_url": {"url": "data:image/png;base64," + tiny_png()}}]}],
        **kwargs)


def test_litellm_openai_round_trip_and_rate_limit(server):
    litellm = pytest.importorskip("litellm")
    server.push("openai answer")
    resp = _litellm_call(litellm, server)
    assert resp.choices[0].message.content == "openai answer"
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    rec = server.requests[0]
    assert (rec.api, rec.path) == ("openai", "/v1/chat/completions")
    assert rec.headers["authorization"] == "Bearer k" and rec.api_key() == "k"
    assert rec.system_text() == "be brief" and rec.user_text() == "describe" and rec.images() == [tiny_png()]

    # Found in litellm 1.110: with neither kwarg, the openai SDK under litellm retries twice (3 POSTs,
    # x-stainless-retry-count 0,1,2). `max_retries` goes to that SDK client; `num_retries`, when not
    # None, overrides it (main.py: `max_retries = num_retries`) and also drives litellm's own wrapper
    # retries. Either =0 alone gives one POST today; pass both to be explicit.
    server.push(Reply(status=429, headers={"retry-after": "0"}))
    with pytest.raises(litellm.RateLimitError):
        _litellm_call(litellm, server, num_retries=0, max_retries=0)
    assert len(server.requests) == 2 and server.pending() == 0
