"""kanjia (砍价): an OpenAI-compatible LLM gateway for buyers in the price war."""

__all__ = ["__version__"]

__version__ = "0.1.0"
