"""The price catalog: every vendor's prices, past and present, as validated data.

Prices live in ``catalog/data/<vendor>.toml`` (one file per vendor, CNY or USD per
1M tokens, every period with its source and evidence level) and exchange rates in
``catalog/data/fx.toml``. ``load_catalog()`` validates and loads them;
``cost_of()`` prices a usage record at a moment, exactly, in the billing currency.
"""

from kanjia.catalog._catalog import Catalog
from kanjia.catalog._chart import (
    CHART_START,
    FREE_FLOOR,
    VENDOR_COLORS,
    Series,
    all_series,
    render_chart,
    shade,
)
from kanjia.catalog._compare import (
    Comparison,
    Disagreement,
    compare_genai_prices,
    compare_litellm,
)
from kanjia.catalog._cost import Cost, Usage, cost_of, estimate_cost, most_cost
from kanjia.catalog._fx import FxRate, FxTable
from kanjia.catalog._load import load_catalog
from kanjia.catalog._override import (
    OVERRIDES_ENV,
    Override,
    OverrideFile,
    default_overrides_path,
    read_overrides,
    write_overrides,
)
from kanjia.catalog._sync import (
    Change,
    Offer,
    SyncPlan,
    genai_offers,
    plan_sync,
    read_price_file,
)
from kanjia.catalog._model import (
    ModelEntry,
    PricePeriod,
    PriceTier,
    PriceWindow,
    Rates,
    VendorInfo,
)
from kanjia.catalog._quote import QuoteRow, Workload, quote
from kanjia.catalog._workload import WorkloadFile, read_workload

__all__ = [
    "CHART_START",
    "OVERRIDES_ENV",
    "Change",
    "Offer",
    "Override",
    "OverrideFile",
    "SyncPlan",
    "default_overrides_path",
    "genai_offers",
    "plan_sync",
    "read_overrides",
    "read_price_file",
    "write_overrides",
    "FREE_FLOOR",
    "VENDOR_COLORS",
    "Catalog",
    "Comparison",
    "Cost",
    "Disagreement",
    "FxRate",
    "FxTable",
    "ModelEntry",
    "PricePeriod",
    "PriceTier",
    "PriceWindow",
    "QuoteRow",
    "Rates",
    "Series",
    "Usage",
    "VendorInfo",
    "Workload",
    "WorkloadFile",
    "all_series",
    "compare_genai_prices",
    "compare_litellm",
    "cost_of",
    "estimate_cost",
    "load_catalog",
    "most_cost",
    "quote",
    "read_workload",
    "render_chart",
    "shade",
]
