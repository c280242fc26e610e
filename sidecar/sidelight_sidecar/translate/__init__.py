"""Translation between the OpenAI chat completions and the Anthropic messages formats.

A caller speaks one format; the route may lead to an upstream of the other.
Requests go one way (`request_to_anthropic`, `request_to_openai`); answers
come back the other (`response` for whole bodies, `stream_to_openai` and
`stream_to_anthropic` for streams, `sidelight_sidecar.errors` for errors).
Everything here works on plain dicts as orjson parses them, without pydantic
on the request path; only the stream translators keep state, that of one
stream. Results share unchanged nested values (schemas, tool inputs, stop
lists) with their input rather than copying them: treat both as read-only
once translated. What cannot be translated is listed in each module's
docstring; what would change the meaning of a request raises
`TranslationError`.
"""

from sidelight_sidecar.translate.common import TranslationError
from sidelight_sidecar.translate.request_to_anthropic import openai_chat_to_anthropic
from sidelight_sidecar.translate.request_to_openai import anthropic_to_openai_chat
from sidelight_sidecar.translate.response import (
    anthropic_to_openai_chat_response,
    openai_chat_to_anthropic_response,
)
from sidelight_sidecar.translate.stream_to_anthropic import OpenAIToAnthropicStream
from sidelight_sidecar.translate.stream_to_openai import AnthropicToOpenAIStream
from sidelight_sidecar.translate.usage import anthropic_usage, openai_usage

__all__ = [
    "AnthropicToOpenAIStream",
    "OpenAIToAnthropicStream",
    "TranslationError",
    "anthropic_to_openai_chat",
    "anthropic_to_openai_chat_response",
    "anthropic_usage",
    "openai_chat_to_anthropic",
    "openai_chat_to_anthropic_response",
    "openai_usage",
]
