"""Client APIs other than chat, translated to and from kanjia's internal chat form.

One translator per client API (Anthropic Messages, OpenAI Responses) sits in front of the
one internal form every vendor adapter speaks: N + M translators, never N × M.
"""

from kanjia.ingress._common import sse_payloads
from kanjia.ingress._messages import (
    MessagesRequest,
    Untranslatable,
    count_input,
    messages_to_chat,
)
from kanjia.ingress._messages_native import (
    MessagesPassThrough,
    dropped_message_fields,
    native_message,
    native_only_form,
    native_request_body,
)
from kanjia.ingress._messages_render import anthropic_usage, chat_to_message
from kanjia.ingress._messages_stream import MessagesStream
from kanjia.ingress._responses import ModelHints, ResponsesRequest, responses_to_chat
from kanjia.ingress._responses_native import (
    ResponsesPassThrough,
    conversation_items,
    dropped_response_fields,
    native_body,
    native_response,
    readable_form,
)
from kanjia.ingress._responses_render import assistant_turn, chat_to_response
from kanjia.ingress._responses_stream import ResponsesStream
from kanjia.ingress._store import (
    Responses,
    ResponseStore,
    SQLiteResponseStore,
    Stored,
    owner_of,
)

__all__ = [
    "MessagesPassThrough",
    "MessagesRequest",
    "MessagesStream",
    "ModelHints",
    "ResponseStore",
    "Responses",
    "ResponsesPassThrough",
    "ResponsesRequest",
    "ResponsesStream",
    "SQLiteResponseStore",
    "Stored",
    "Untranslatable",
    "anthropic_usage",
    "assistant_turn",
    "chat_to_message",
    "chat_to_response",
    "conversation_items",
    "count_input",
    "dropped_message_fields",
    "dropped_response_fields",
    "messages_to_chat",
    "native_body",
    "native_message",
    "native_only_form",
    "native_request_body",
    "native_response",
    "owner_of",
    "readable_form",
    "responses_to_chat",
    "sse_payloads",
]
