"""Client APIs other than chat, translated to and from kanjia's internal chat form.

One translator per client API (Anthropic Messages, OpenAI Responses) sits in front of the
one internal form every vendor adapter speaks: N + M translators, never N × M.
"""

from kanjia.ingress._common import sse_payloads
from kanjia.ingress._messages import (
    MessagesRequest,
    anthropic_usage,
    chat_to_message,
    count_input,
    messages_to_chat,
)
from kanjia.ingress._messages_stream import MessagesStream

__all__ = [
    "MessagesRequest",
    "MessagesStream",
    "anthropic_usage",
    "chat_to_message",
    "count_input",
    "messages_to_chat",
    "sse_payloads",
]
