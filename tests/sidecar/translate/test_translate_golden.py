"""Golden files for API translation: every case under golden/ runs here.

A case is a directory `golden/<direction>-<kind>-<name>/`; `<direction>` is
`o2a` (OpenAI in, Anthropic out) or `a2o`, `<kind>` picks the runner:

    request    input.json  -> expected.json   a request body
    response   input.json  -> expected.json   a non-streaming response body
    stream     input.sse   -> expected.sse    an upstream stream, re-encoded
    error      input.txt   -> expected.json   an upstream error body (any bytes)

A case may add `options.json`: `{"include_usage": false}` for `a2o-stream`,
`{"status": 529}` (required) for `error`. An expected stream ends with an SSE
comment holding the translator's final `finished` flag and `usage`, so the
golden pins them too. Streams are fed whole, byte by byte and in 7-byte
chunks; all three must give the same bytes.

Every output is also checked against the official SDKs' types: requests
against their `create` parameter TypedDicts, responses against `Message` and
`ChatCompletion`, each stream event against `RawMessageStreamEvent` or
`ChatCompletionChunk`, and each whole stream by the SDK's own stream reader
over an in-memory transport.

A file no runner reads, an expected file without input, an input without
expected output, or a directory no runner claims fails the corpus test.

Regenerate expected files with `UPDATE_GOLDEN=1 pytest tests/sidecar/translate`
and review the diff.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anthropic
import httpx2
import openai
import orjson
import pytest
from anthropic.types import ErrorResponse, Message, RawMessageStreamEvent
from anthropic.types import message_create_params as anthropic_params
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat import completion_create_params as openai_params
from openai.types.shared import ErrorObject
from pydantic import TypeAdapter

from sidelight_sidecar.errors import ApiFormat, translate_error_body
from sidelight_sidecar.sse import SSEParser
from sidelight_sidecar.translate import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
    anthropic_to_openai_chat,
    anthropic_to_openai_chat_response,
    openai_chat_to_anthropic,
    openai_chat_to_anthropic_response,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
ANTHROPIC_MODEL = "claude-sonnet-4-6"
OPENAI_MODEL = "gpt-4o-mini"
DEFAULT_MAX_TOKENS = 1024
CREATED = 1_700_000_000
OPTIONS = "options.json"

Options = dict[str, Any]
Translate = Callable[[bytes, Options], bytes]
StreamTranslator = AnthropicToOpenAIStream | OpenAIToAnthropicStream


@dataclass(frozen=True)
class Runner:
    """How one kind of case is run and checked."""

    translate: Translate
    check: Callable[[bytes], None]
    input: str = "input.json"
    expected: str = "expected.json"
    takes_options: bool = False


# Running


def _json_runner(function: Callable[[dict[str, Any]], dict[str, Any]]) -> Translate:
    def run(data: bytes, _options: Options) -> bytes:
        return _pretty(function(orjson.loads(data)))

    return run


def _stream_runner(make: Callable[[Options], StreamTranslator]) -> Translate:
    def run(data: bytes, options: Options) -> bytes:
        results = {_translate_stream(make(options), data, size) for size in (len(data), 1, 7)}
        assert len(results) == 1, "the output depends on how the input was chunked"
        return results.pop()

    return run


def _translate_stream(translator: StreamTranslator, data: bytes, size: int) -> bytes:
    parser = SSEParser()
    out = bytearray()
    for start in range(0, len(data), size):
        for event in parser.feed(data[start : start + size]):
            out += b"".join(translator.feed(event))
    finished = "true" if translator.finished else "false"
    tokens = translator.usage
    out += f": finished={finished} input_tokens={tokens[0]} output_tokens={tokens[1]}\n".encode()
    return bytes(out)


def _error_runner(source: ApiFormat, target: ApiFormat) -> Translate:
    def run(data: bytes, options: Options) -> bytes:
        return _pretty(orjson.loads(translate_error_body(data, options["status"], source, target)))

    return run


def _pretty(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


# Checking against the SDKs


def _check_params(
    typed_dict: Any, streaming_typed_dict: Any, extra_keys: frozenset[str] = frozenset()
) -> Callable[[bytes], None]:
    adapters = (TypeAdapter(typed_dict), TypeAdapter(streaming_typed_dict))
    keys = (
        typed_dict.__required_keys__ | typed_dict.__optional_keys__,
        streaming_typed_dict.__required_keys__ | streaming_typed_dict.__optional_keys__,
    )

    def check(output: bytes) -> None:
        body = orjson.loads(output)
        streaming = int(bool(body.get("stream")))
        unknown = set(body) - keys[streaming] - extra_keys
        assert not unknown, f"keys the SDK does not know: {unknown}"
        _consume(adapters[streaming].validate_python(body))

    return check


def _consume(value: object) -> object:
    """Drain the lazy validators pydantic puts on TypedDicts' `Iterable` fields."""
    if isinstance(value, dict):
        return {key: _consume(item) for key, item in value.items()}
    if isinstance(value, str | bytes | int | float | bool) or value is None:
        return value
    return [_consume(item) for item in cast(Iterable[object], value)]


def _check_model(model: type[ChatCompletion | Message]) -> Callable[[bytes], None]:
    def check(output: bytes) -> None:
        model.model_validate(orjson.loads(output))

    return check


def _check_openai_stream(output: bytes) -> None:
    events = SSEParser().feed(output)
    error = None
    for event in events:
        assert event.event is None
        if event.data == "[DONE]":
            assert event is events[-1]
            continue
        chunk = orjson.loads(event.data)
        if "error" in chunk:
            error = ErrorObject.model_validate(chunk["error"])
            assert event is events[-1]
        else:
            ChatCompletionChunk.model_validate(chunk)
    if not events or (error is None and events[-1].data != "[DONE]"):
        return  # a cut stream: the proxy appends the error event
    client = openai.OpenAI(api_key="test", base_url="http://upstream", http_client=_serving(output))
    messages: list[Any] = [{"role": "user", "content": "hi"}]
    if error is not None:
        with pytest.raises(openai.APIError, match=re.escape(error.message)):
            _read_openai_stream(client, messages)
    else:
        completion = _read_openai_stream(client, messages)
        assert completion.choices[0].finish_reason is not None


def _read_openai_stream(client: openai.OpenAI, messages: list[Any]) -> Any:
    with client.chat.completions.stream(model=OPENAI_MODEL, messages=messages) as stream:
        for _ in stream:
            pass
        # Not get_final_completion(): it raises on a `length` finish.
        completion = stream.current_completion_snapshot
    for call in completion.choices[0].message.tool_calls or ():
        assert isinstance(orjson.loads(call.function.arguments), dict)
    return completion


_STREAM_EVENT = TypeAdapter[Any](RawMessageStreamEvent)


def _check_anthropic_stream(output: bytes) -> None:
    events = SSEParser().feed(output)
    for event in events:
        payload = orjson.loads(event.data)
        assert event.event == payload["type"]
        if event.event == "error":
            _check_anthropic_error(event.data.encode())
            assert event is events[-1]
        else:
            _STREAM_EVENT.validate_python(payload)
    if not events or events[-1].event not in ("message_stop", "error"):
        return  # a cut stream: the proxy appends the error event
    client = anthropic.Anthropic(
        api_key="test", base_url="http://upstream", http_client=_serving(output)
    )
    if events[-1].event == "error":
        with pytest.raises(anthropic.APIStatusError):
            _read_anthropic_stream(client)
    else:
        assert _read_anthropic_stream(client).stop_reason is not None


def _read_anthropic_stream(client: anthropic.Anthropic) -> Any:
    with client.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        return stream.get_final_message()


def _serving(body: bytes) -> httpx2.Client:
    """An HTTP client whose every request is answered with `body` as an event stream."""

    def answer(_request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    return httpx2.Client(transport=httpx2.MockTransport(answer))


def _check_openai_error(output: bytes) -> None:
    ErrorObject.model_validate(orjson.loads(output)["error"])


def _check_anthropic_error(output: bytes) -> None:
    body = orjson.loads(output)
    if body["error"]["type"] == "request_too_large":
        # Documented (HTTP 413, sent by Anthropic's edge) but missing from the SDK's union.
        assert set(body["error"]) == {"type", "message"}
        body["error"]["type"] = "invalid_request_error"
    ErrorResponse.model_validate(body)


RUNNERS: dict[str, Runner] = {
    "o2a-request": Runner(
        _json_runner(lambda x: openai_chat_to_anthropic(x, ANTHROPIC_MODEL, DEFAULT_MAX_TOKENS)),
        _check_params(
            anthropic_params.MessageCreateParamsNonStreaming,
            anthropic_params.MessageCreateParamsStreaming,
            # Valid at the anthropic-version the sidecar sends (2023-06-01);
            # the 2026 SDK, pinned to a later version, no longer has them.
            frozenset({"temperature", "top_p"}),
        ),
    ),
    "a2o-request": Runner(
        _json_runner(lambda x: anthropic_to_openai_chat(x, OPENAI_MODEL)),
        _check_params(
            openai_params.CompletionCreateParamsNonStreaming,
            openai_params.CompletionCreateParamsStreaming,
        ),
    ),
    "a2o-response": Runner(
        _json_runner(
            lambda x: anthropic_to_openai_chat_response(x, ANTHROPIC_MODEL, created=CREATED)
        ),
        _check_model(ChatCompletion),
    ),
    "o2a-response": Runner(
        _json_runner(lambda x: openai_chat_to_anthropic_response(x, OPENAI_MODEL)),
        _check_model(Message),
    ),
    "a2o-stream": Runner(
        _stream_runner(
            lambda options: AnthropicToOpenAIStream(
                ANTHROPIC_MODEL, options.get("include_usage", True), created=CREATED
            )
        ),
        _check_openai_stream,
        input="input.sse",
        expected="expected.sse",
        takes_options=True,
    ),
    "o2a-stream": Runner(
        _stream_runner(lambda _options: OpenAIToAnthropicStream(OPENAI_MODEL)),
        _check_anthropic_stream,
        input="input.sse",
        expected="expected.sse",
    ),
    "a2o-error": Runner(
        _error_runner("anthropic", "openai"),
        _check_openai_error,
        input="input.txt",
        takes_options=True,
    ),
    "o2a-error": Runner(
        _error_runner("openai", "anthropic"),
        _check_anthropic_error,
        input="input.txt",
        takes_options=True,
    ),
}


# The corpus


def runner_for(case: Path) -> Runner | None:
    """The runner that claims a case directory, by its `<direction>-<kind>-` prefix."""
    direction, _, rest = case.name.partition("-")
    kind, _, name = rest.partition("-")
    return RUNNERS.get(f"{direction}-{kind}") if name else None


def corpus_problems(root: Path) -> list[str]:
    """Everything in a golden corpus that no test would run or check."""
    problems = []
    for entry in sorted(root.iterdir()):
        runner = runner_for(entry) if entry.is_dir() else None
        if runner is None:
            problems.append(f"{entry.name}: no runner for this entry")
            continue
        files = {path.name for path in entry.iterdir()}
        known = {runner.input, runner.expected} | ({OPTIONS} if runner.takes_options else set())
        problems.extend(f"{entry.name}/{name}: no runner reads it" for name in files - known)
        if runner.expected in files and runner.input not in files:
            problems.append(f"{entry.name}/{runner.expected}: expected output without input")
        if runner.input in files and runner.expected not in files and not UPDATE:
            problems.append(f"{entry.name}/{runner.input}: input without expected output")
    return problems


def _cases() -> list[Path]:
    return [path for path in sorted(GOLDEN.iterdir()) if path.is_dir() and runner_for(path)]


def test_corpus_has_no_orphans() -> None:
    assert corpus_problems(GOLDEN) == []


def test_corpus_covers_every_runner() -> None:
    claimed = {runner_for(case) for case in _cases()}
    assert [kind for kind, runner in RUNNERS.items() if runner not in claimed] == []


@pytest.mark.parametrize("case", _cases(), ids=lambda path: path.name)
def test_golden(case: Path) -> None:
    runner = runner_for(case)
    assert runner is not None
    options_path = case / OPTIONS
    options = orjson.loads(options_path.read_bytes()) if options_path.exists() else {}
    output = runner.translate((case / runner.input).read_bytes(), options)
    expected_path = case / runner.expected
    if UPDATE:
        expected_path.write_bytes(output)
    expected = expected_path.read_bytes()
    if expected_path.suffix == ".json":
        assert orjson.loads(output) == orjson.loads(expected)
    else:
        assert output.decode() == expected.decode()
    runner.check(output)


def test_corpus_problems_are_found(tmp_path: Path) -> None:
    for name, files in {
        "o2a-request-fine": ["input.json", "expected.json"],
        "o2a-request-orphan": ["expected.json"],
        "o2a-request-stray": ["input.json", "expected.json", "notes.md"],
        "o2a-request-options": ["input.json", "expected.json", OPTIONS],
        "o2a-error-untested": ["input.txt"],
        "x2y-request-unknown": ["input.json", "expected.json"],
        "o2a-request": ["input.json", "expected.json"],
    }.items():
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text("{}")
    (tmp_path / "README").write_text("")
    expected = [
        "README: no runner for this entry",
        "o2a-error-untested/input.txt: input without expected output",
        "o2a-request: no runner for this entry",
        "o2a-request-options/options.json: no runner reads it",
        "o2a-request-orphan/expected.json: expected output without input",
        "o2a-request-stray/notes.md: no runner reads it",
        "x2y-request-unknown: no runner for this entry",
    ]
    if UPDATE:
        expected.remove("o2a-error-untested/input.txt: input without expected output")
    assert corpus_problems(tmp_path) == expected
