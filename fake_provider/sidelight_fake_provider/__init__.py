"""A fake LLM provider that speaks the OpenAI and Anthropic wire formats, for tests and the demo."""
