"""Each simulated vendor's wire format, in modules named as its adapter in ``kanjia.vendors``.

- ``anthropic`` (Messages), with ``anthropic_request`` and ``anthropic_errors``
- ``gemini`` (generateContent, embeddings), with ``gemini_request`` and ``gemini_errors``
- ``bedrock`` (Converse), with ``bedrock_request``, ``bedrock_sigv4`` and
  ``bedrock_eventstream``
- ``azure`` (deployment URLs; OpenAI's format through the ``openai_compat`` handlers)
- ``openai_compat`` (chat completions, embeddings, models), with ``openai_compat_request``,
  ``openai_compat_render``, ``openai_compat_responses`` (OpenAI's Responses API) and the
  family's per-vendor differences as data: ``openai_compat.toml``, one ``[vendors.<key>]``
  table per vendor key of ``vendors.toml``, loaded by ``openai_compat_vendors``, its error
  bodies built by ``openai_compat_errors``

The machinery every vendor shares (app, faults, directives, control, limits, stats, SSE,
tokens, state, usage, batches) is in the ``kanjia.sandbox`` modules above this package.
Written independently of the adapters: the sandbox is the oracle they are tested against,
so nothing here imports ``kanjia.vendors`` (``tests/test_layout.py`` checks).
"""
