"""Request translation from Anthropic messages to OpenAI chat completions.

- `system` becomes a leading system message (a string stays a string,
  blocks become text parts).
- User text and images (base64 sources become `data:` URLs, url sources
  stay URLs) become content parts.
- `tool_result` blocks become `tool` messages placed before the rest of
  their user turn, as OpenAI wants them right after the assistant's tool
  calls; assistant `tool_use` blocks become `tool_calls`, `input`
  serialised into `arguments`.
- Tools become function tools (`input_schema` as `parameters`, `strict`
  kept); `tool_choice` auto, none, any and tool become auto, none, required
  and a named function; `disable_parallel_tool_use` becomes
  `parallel_tool_calls: false`.
- `max_tokens` becomes `max_completion_tokens`; `stop_sequences` becomes
  `stop`; `temperature` and `top_p` are copied (both fit OpenAI's ranges);
  `metadata.user_id` becomes `user`.
- A stream asks for `stream_options.include_usage`, so that usage can be
  settled.
- `output_config.format` becomes a `json_schema` response format, not
  `strict`: OpenAI's strict mode rejects schemas that Anthropic accepts.

Dropped, having no OpenAI equivalent: `top_k`, `thinking` and the thinking
blocks of earlier turns, `output_config.effort`, `service_tier`,
`container`, `mcp_servers`, `context_management`, `cache_control`,
citations, and the `is_error` flag of tool results.

Refused with `TranslationError`: roles other than user and assistant,
documents, search results, server tools and their blocks, image file
sources, images inside tool results, and output formats without a schema.
"""

from __future__ import annotations

import orjson

from sidelight_sidecar.translate.common import JSONObject, TranslationError, objects, text_field

__all__ = ["anthropic_to_openai_chat"]

_TOOL_CHOICES: dict[str, str] = {"auto": "auto", "none": "none", "any": "required"}


def anthropic_to_openai_chat(body: JSONObject, model: str) -> JSONObject:
    """An OpenAI chat completions request for `model` asking what the Anthropic `body` asks."""
    messages: list[JSONObject] = []
    system = body.get("system")
    if system:
        content = system if isinstance(system, str) else _openai_text_parts(system)
        messages.append({"role": "system", "content": content})
    for message in objects(body.get("messages"), "messages"):
        role = message.get("role")
        if role == "user":
            _append_openai_user(messages, message.get("content"))
        elif role == "assistant":
            messages.append(_openai_assistant(message.get("content")))
        else:
            raise TranslationError(f"messages with role {role!r} cannot be translated")

    result: JSONObject = {"model": model, "messages": messages}
    if body.get("max_tokens") is not None:
        result["max_completion_tokens"] = body["max_tokens"]
    output_config = body.get("output_config")
    output_format = output_config.get("format") if isinstance(output_config, dict) else None
    if output_format is not None:
        result["response_format"] = _openai_response_format(output_format)
    if body.get("stop_sequences"):
        result["stop"] = body["stop_sequences"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            result[key] = body[key]
    tools = body.get("tools")
    if tools:
        result["tools"] = [_openai_tool(tool) for tool in objects(tools, "tools")]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            result["tool_choice"] = _openai_tool_choice(choice)
            if choice.get("disable_parallel_tool_use"):
                result["parallel_tool_calls"] = False
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id"):
        result["user"] = metadata["user_id"]
    if body.get("stream"):
        result["stream"] = True
        result["stream_options"] = {"include_usage": True}
    return result


def _openai_response_format(output_format: object) -> JSONObject:
    schema = output_format.get("schema") if isinstance(output_format, dict) else None
    if not isinstance(schema, dict):
        raise TranslationError("only a json_schema output format can be sent to an OpenAI model")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


def _openai_text_parts(blocks: object) -> list[JSONObject]:
    parts: list[JSONObject] = []
    for block in objects(blocks, "content"):
        if block.get("type") != "text":
            raise TranslationError(
                f"{block.get('type')!r} blocks cannot be translated here, only text"
            )
        parts.append({"type": "text", "text": block.get("text")})
    return parts


def _append_openai_user(messages: list[JSONObject], content: object) -> None:
    """Tool messages for the turn's tool results, then a user message with the rest."""
    if isinstance(content, str):
        messages.append({"role": "user", "content": content})
        return
    parts: list[JSONObject] = []
    for block in objects(content, "user content"):
        kind = block.get("type")
        if kind == "tool_result":
            messages.append(_openai_tool_message(block))
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text")})
        elif kind == "image":
            parts.append(_openai_image(block.get("source")))
        else:
            raise TranslationError(f"{kind!r} blocks cannot be sent to an OpenAI model")
    if parts:
        messages.append({"role": "user", "content": parts})


def _openai_tool_message(block: JSONObject) -> JSONObject:
    content = block.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = _openai_text_parts(content)
    return {"role": "tool", "tool_call_id": text_field(block, "tool_use_id"), "content": content}


def _openai_image(source: object) -> JSONObject:
    if isinstance(source, dict):
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
            return {"type": "image_url", "image_url": {"url": url}}
        if source.get("type") == "url":
            return {"type": "image_url", "image_url": {"url": text_field(source, "url")}}
    raise TranslationError("only base64 and url image sources can be sent to an OpenAI model")


def _openai_assistant(content: object) -> JSONObject:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    parts: list[JSONObject] = []
    calls: list[JSONObject] = []
    for block in objects(content, "assistant content"):
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text")})
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": text_field(block, "name"), "arguments": arguments}
            calls.append({"id": text_field(block, "id"), "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):
            raise TranslationError(f"{kind!r} blocks cannot be sent to an OpenAI model")
    message: JSONObject = {"role": "assistant", "content": parts or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    return message


def _openai_tool(tool: JSONObject) -> JSONObject:
    if tool.get("type") not in (None, "custom"):
        raise TranslationError(f"the server tool {tool.get('type')!r} needs an Anthropic model")
    function: JSONObject = {"name": text_field(tool, "name")}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema")
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _openai_tool_choice(choice: JSONObject) -> str | JSONObject:
    kind = choice.get("type")
    if isinstance(kind, str) and kind in _TOOL_CHOICES:
        return _TOOL_CHOICES[kind]
    if kind == "tool":
        return {"type": "function", "function": {"name": text_field(choice, "name")}}
    raise TranslationError(f"tool_choice {kind!r} cannot be sent to an OpenAI model")
