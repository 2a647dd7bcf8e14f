"""Each simulated vendor's wire format, in a module named as its adapter in ``kanjia.vendors``.

``anthropic``, ``gemini``, ``bedrock``, ``azure`` and ``openai_compat`` (with the
OpenAI-compatible vendors' differences as data: ``openai_compat.toml``, one section per
vendor key of ``vendors.toml``); a vendor's request parsing and error answers sit beside it
as ``<vendor>_request`` and ``<vendor>_errors``. Written independently of the adapters: the
sandbox is the oracle they are tested against, so nothing here imports ``kanjia.vendors``.
"""
