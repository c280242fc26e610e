"""Request translation from OpenAI chat completions to Anthropic messages.

- `system` and `developer` messages, wherever they stand, become the
  top-level `system`, one text block per text, in order.
- User text and `image_url` parts: a `data:...;base64,` URL becomes a base64
  image source, an http(s) URL a url source.
- Assistant content and `tool_calls` become text and `tool_use` blocks, the
  JSON arguments parsed into `input`.
- `tool` messages become `tool_result` blocks in a user turn. Consecutive
  turns of one role are merged into one (Anthropic wants the roles to
  alternate), so parallel tool results land in one user message.
- Function tools become tools with `input_schema` (an empty object schema
  when `parameters` is absent) and `strict`; `tool_choice` auto, none,
  required and a named function become auto, none, any and tool;
  `parallel_tool_calls: false` becomes `disable_parallel_tool_use`.
- `stop` becomes `stop_sequences`; `stream` is copied.
- `temperature` is capped at 1 (Anthropic's range is 0 to 1, OpenAI's 0 to
  2); `top_p` is sent only without `temperature`, as recent Claude models
  reject the two together. The sidecar speaks `anthropic-version`
  2023-06-01, where both exist; Claude Opus 4.7 and later reject any
  sampling parameter (the 2026 SDKs no longer have them), so a route to
  those models must not expect them to be honoured: the model answers 400.
- `max_completion_tokens`, else `max_tokens`, else `default_max_tokens`
  becomes `max_tokens`, which Anthropic requires.
- `user` (else `safety_identifier`) becomes `metadata.user_id`.
- `response_format` `json_object` becomes an instruction appended to the
  system prompt: Anthropic has no JSON mode without a schema. `json_schema`
  becomes `output_config.format` (structured outputs; a model without them
  answers 400, which is better than JSON that is only hoped for).

Dropped, having no Anthropic equivalent: `frequency_penalty`,
`presence_penalty`, `logit_bias`, `logprobs`, `top_logprobs`, `seed`,
`service_tier`, `store`, `metadata`, `modalities`, `audio`, `prediction`,
`reasoning_effort` (Anthropic's thinking needs a token budget and other
sampling rules), `verbosity`, `web_search_options`, `prompt_cache_key`,
`prompt_cache_retention`, `stream_options` (Anthropic always reports usage),
the `name` of messages and the `detail` of images.

Refused with `TranslationError`, because dropping them would change what the
model is asked or the shape of the answer: `n` other than 1, the legacy
`functions` and `function_call`, roles other than system, developer, user,
assistant and tool, non-function tools and tool calls, `allowed_tools` tool
choices, audio and file parts, non-base64 `data:` URLs, and tool arguments
that are not a JSON object.
"""

from __future__ import annotations

from sidelight_sidecar.translate.common import (
    JSONObject,
    TranslationError,
    objects,
    text_field,
    tool_input,
)

__all__ = ["JSON_OBJECT_INSTRUCTION", "openai_chat_to_anthropic"]

JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."
"""Appended to the system prompt for OpenAI's `response_format: json_object`."""

_TOOL_CHOICES: dict[str, str] = {"auto": "auto", "none": "none", "required": "any"}


def openai_chat_to_anthropic(body: JSONObject, model: str, default_max_tokens: int) -> JSONObject:
    """An Anthropic messages request for `model` asking what the OpenAI `body` asks."""
    if body.get("n") not in (None, 1):
        raise TranslationError("`n` other than 1 cannot be sent to an Anthropic model")
    if "functions" in body or "function_call" in body:
        raise TranslationError("the legacy `functions` cannot be translated; use `tools`")
    system: list[JSONObject] = []
    messages: list[JSONObject] = []
    for message in objects(body.get("messages"), "messages"):
        role = message.get("role")
        content: str | list[JSONObject]
        if role in ("system", "developer"):
            system.extend(_anthropic_text_blocks(message.get("content")))
            continue
        if role == "user":
            content = _anthropic_user_content(message.get("content"))
        elif role == "assistant":
            content = _anthropic_assistant_content(message)
        elif role == "tool":
            content = [_anthropic_tool_result(message)]
            role = "user"
        else:
            raise TranslationError(f"messages with role {role!r} cannot be translated")
        if content:
            _append_merged(messages, role, content)

    result: JSONObject = {"model": model}
    output_format = _anthropic_output_format(body.get("response_format"), system)
    if system:
        result["system"] = system
    result["messages"] = messages
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    result["max_tokens"] = default_max_tokens if max_tokens is None else max_tokens
    if output_format is not None:
        result["output_config"] = {"format": output_format}
    stop = body.get("stop")
    if stop is not None:
        result["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        result["temperature"] = min(temperature, 1.0)
    elif body.get("top_p") is not None:
        result["top_p"] = body["top_p"]
    tools = body.get("tools")
    if tools:
        result["tools"] = [_anthropic_tool(tool) for tool in objects(tools, "tools")]
        choice = _anthropic_tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            result["tool_choice"] = choice
    user = body.get("user") or body.get("safety_identifier")
    if user:
        result["metadata"] = {"user_id": user}
    if body.get("stream"):
        result["stream"] = True
    return result


def _anthropic_text_blocks(content: object) -> list[JSONObject]:
    """Text blocks of an OpenAI content that may only hold text (and refusals)."""
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[JSONObject] = []
    for part in objects(content, "content"):
        kind = part.get("type")
        text = part.get("text") if kind == "text" else part.get("refusal")
        if kind not in ("text", "refusal") or not isinstance(text, str):
            raise TranslationError(f"{kind!r} parts cannot be translated here, only text")
        if text:
            blocks.append({"type": "text", "text": text})
    return blocks


def _anthropic_user_content(content: object) -> str | list[JSONObject]:
    if isinstance(content, str):
        return content
    blocks: list[JSONObject] = []
    for part in objects(content, "user content"):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            blocks.append(_anthropic_image(part.get("image_url")))
        else:
            raise TranslationError(f"{kind!r} content parts cannot be sent to an Anthropic model")
    return blocks


def _anthropic_image(image_url: object) -> JSONObject:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise TranslationError("an image_url part needs a url")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        if not comma or not header.endswith(";base64"):
            raise TranslationError("image data: URLs must be base64-encoded")
        media_type = header.split(";", 1)[0]
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError("image URLs must be data: or http(s) URLs")


def _anthropic_assistant_content(message: JSONObject) -> str | list[JSONObject]:
    content = message.get("content")
    tool_calls = message.get("tool_calls")
    if not tool_calls and isinstance(content, str):
        return content
    blocks = _anthropic_text_blocks(content)
    for call in objects(tool_calls or [], "tool_calls"):
        function = call.get("function")
        if call.get("type", "function") != "function" or not isinstance(function, dict):
            raise TranslationError("only function tool calls can be sent to an Anthropic model")
        blocks.append(
            {
                "type": "tool_use",
                "id": text_field(call, "id"),
                "name": text_field(function, "name"),
                "input": tool_input(function.get("arguments")),
            }
        )
    return blocks


def _anthropic_tool_result(message: JSONObject) -> JSONObject:
    block: JSONObject = {"type": "tool_result", "tool_use_id": text_field(message, "tool_call_id")}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        blocks = _anthropic_text_blocks(content)
        if blocks:
            block["content"] = blocks
    return block


def _append_merged(messages: list[JSONObject], role: str, content: str | list[JSONObject]) -> None:
    if messages and messages[-1]["role"] == role:
        previous = messages[-1]
        previous["content"] = _as_blocks(previous["content"]) + _as_blocks(content)
    else:
        messages.append({"role": role, "content": content})


def _as_blocks(content: str | list[JSONObject]) -> list[JSONObject]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _anthropic_output_format(
    response_format: object, system: list[JSONObject]
) -> JSONObject | None:
    """The `output_config.format` for a `response_format`; JSON mode extends `system`."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
        return None
    if kind == "json_schema" and isinstance(response_format, dict):
        json_schema = response_format.get("json_schema")
        if isinstance(json_schema, dict) and isinstance(json_schema.get("schema"), dict):
            return {"type": "json_schema", "schema": json_schema["schema"]}
    raise TranslationError(f"response_format {kind!r} cannot be translated")


def _anthropic_tool(tool: JSONObject) -> JSONObject:
    function = tool.get("function")
    if tool.get("type") != "function" or not isinstance(function, dict):
        raise TranslationError("only function tools can be sent to an Anthropic model")
    result: JSONObject = {"name": text_field(function, "name")}
    if function.get("description"):
        result["description"] = function["description"]
    schema = function.get("parameters")
    result["input_schema"] = schema if schema else {"type": "object", "properties": {}}
    if function.get("strict") is not None:
        result["strict"] = function["strict"]
    return result


def _anthropic_tool_choice(choice: object, parallel_tool_calls: object) -> JSONObject | None:
    result: JSONObject | None
    if choice is None:
        result = {"type": "auto"} if parallel_tool_calls is False else None
    elif isinstance(choice, str) and choice in _TOOL_CHOICES:
        result = {"type": _TOOL_CHOICES[choice]}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        if not isinstance(function, dict):
            raise TranslationError("a named tool_choice needs a function name")
        result = {"type": "tool", "name": text_field(function, "name")}
    else:
        raise TranslationError("this tool_choice cannot be sent to an Anthropic model")
    if parallel_tool_calls is False and result is not None and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result
