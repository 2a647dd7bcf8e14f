"""The price catalog: every vendor's prices, past and present, as validated data.

Prices live in ``catalog/data/<vendor>.toml`` (one file per vendor, CNY or USD per
1M tokens, every period with its source and evidence level) and exchange rates in
``catalog/data/fx.toml``. ``load_catalog()`` validates and loads them, plus the rest of
the market from the genai-prices snapshot (``catalog/market/genai_prices.json``, built
by ``kanjia catalog build-market``, loaded on first use) and the user's price-override
file; ``cost_of()`` prices a usage record at a moment, exactly, in the billing currency.
``plan_sync`` turns other catalogs' prices (LiteLLM JSON, kanjia TOML, genai-prices)
into guarded overrides; ``compare_genai_prices`` lists where they disagree with ours.
"""

from kanjia.catalog._catalog import Catalog
from kanjia.catalog._chart import (
    CHART_START,
    FREE_FLOOR,
    VENDOR_COLORS,
    Series,
    all_series,
    price_cuts,
    render_chart,
    shade,
)
from kanjia.catalog._compare import (
    Comparison,
    Disagreement,
    compare_genai_prices,
    compare_litellm,
)
from kanjia.catalog._cost import Cost, Usage, batch_rates, cost_of, estimate_cost, most_cost
from kanjia.catalog._fx import FxRate, FxTable
from kanjia.catalog._load import load_catalog
from kanjia.catalog._model import (
    CacheRules,
    ModelEntry,
    PricePeriod,
    PriceTier,
    PriceWindow,
    Rates,
    VendorInfo,
)
from kanjia.catalog._override import (
    OVERRIDES_ENV,
    Override,
    OverrideFile,
    default_overrides_path,
    price_overrides_path,
    read_overrides,
    write_overrides,
)
from kanjia.catalog._quote import QuoteRow, Workload, quote
from kanjia.catalog._sync import (
    Change,
    Offer,
    SyncPlan,
    genai_offers,
    plan_sync,
    read_price_file,
)
from kanjia.catalog._workload import WorkloadFile, read_workload

__all__ = [
    "CHART_START",
    "FREE_FLOOR",
    "OVERRIDES_ENV",
    "VENDOR_COLORS",
    "CacheRules",
    "Catalog",
    "Change",
    "Comparison",
    "Cost",
    "Disagreement",
    "FxRate",
    "FxTable",
    "ModelEntry",
    "Offer",
    "Override",
    "OverrideFile",
    "PricePeriod",
    "PriceTier",
    "PriceWindow",
    "QuoteRow",
    "Rates",
    "Series",
    "SyncPlan",
    "Usage",
    "VendorInfo",
    "Workload",
    "WorkloadFile",
    "all_series",
    "batch_rates",
    "compare_genai_prices",
    "compare_litellm",
    "cost_of",
    "default_overrides_path",
    "estimate_cost",
    "genai_offers",
    "load_catalog",
    "most_cost",
    "plan_sync",
    "price_cuts",
    "price_overrides_path",
    "quote",
    "read_overrides",
    "read_price_file",
    "read_workload",
    "render_chart",
    "shade",
    "write_overrides",
]
