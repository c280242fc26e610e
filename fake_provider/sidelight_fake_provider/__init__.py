"""A fake LLM provider that speaks the OpenAI and Anthropic wire formats, for tests and the demo.

Start with `server` (`FakeProvider`, `FakeProviderThread`, `main_listen`);
`content` documents what the fake answers and how it counts tokens; `faults`
documents the fault rules; `app` the routes and the checks made before a
handler runs; `admin` the `/_fake/` API.
"""
