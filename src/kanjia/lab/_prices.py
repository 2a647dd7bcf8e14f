"""List prices used to cost the RouteLLM data, which records tokens but not money.

Data, not logic: one entry per model, with the date the price applied and its source.
Amounts are USD per million tokens (the unit is in the field name).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class TokenPrice:
    model: str
    input_mtok: Decimal
    output_mtok: Decimal
    start_date: str
    source: str

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for one call."""
        total = self.input_mtok * input_tokens + self.output_mtok * output_tokens
        return float(total / Decimal(1_000_000))


PRICES: tuple[TokenPrice, ...] = (
    TokenPrice(
        model="gpt-4-1106-preview",
        input_mtok=Decimal("10.00"),
        output_mtok=Decimal("30.00"),
        start_date="2023-11-06",
        source="OpenAI API pricing page, GPT-4 Turbo (gpt-4-1106-preview) list price",
    ),
    TokenPrice(
        model="mistralai/Mixtral-8x7B-Instruct-v0.1",
        input_mtok=Decimal("0.70"),
        output_mtok=Decimal("0.70"),
        start_date="2024-02-26",
        source="Mistral AI La Plateforme pricing, open-mixtral-8x7b list price",
    ),
)

#: Output length assumed when the data has no answer text (MMLU answers are one letter).
ASSUMED_OUTPUT_TOKENS = 1

#: How token counts are made: cl100k_base for every model (an approximation for Mixtral).
TOKENIZER = "cl100k_base"


def price_of(model: str) -> TokenPrice:
    for price in PRICES:
        if price.model == model:
            return price
    known = ", ".join(p.model for p in PRICES)
    raise LookupError(f"no list price for {model!r} (known: {known})")
