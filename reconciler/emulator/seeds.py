"""Built-in specs and the price list: the fixed world every emulator starts with.

Seed specs (ids are stable, so examples and tests can name them):

    SPEC_SUPPORT_TICKETS   3c90c3cc-0d44-4b50-8888-8dd25736052a  support-tickets   SUCCEEDED  v1..3
    SPEC_PRODUCT_REVIEWS   6f1c2b7e-8a4d-4c3e-9b2a-1d5e7f9a0b3c  product-reviews   SUCCEEDED  v1..2
    SPEC_CHAT_TRANSCRIPTS  7a1e5c3d-2b4f-4e6a-9c8d-0f1e2d3c4b5a  chat-transcripts  SUCCEEDED  v1
    SPEC_MEDICAL_NOTES     b2d4f6a8-1c3e-4a5b-8d7f-9e0a1b2c3d4e  medical-notes     PROCESSING v1
    SPEC_LEGAL_CONTRACTS   d9e8f7a6-b5c4-4d3e-a2f1-0e9d8c7b6a5f  legal-contracts   FAILED     v1

`support-tickets` is the spec of the seed page's example request.
"""

from __future__ import annotations

from dataclasses import dataclass

SPEC_SUPPORT_TICKETS = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
SPEC_PRODUCT_REVIEWS = "6f1c2b7e-8a4d-4c3e-9b2a-1d5e7f9a0b3c"
SPEC_CHAT_TRANSCRIPTS = "7a1e5c3d-2b4f-4e6a-9c8d-0f1e2d3c4b5a"
SPEC_MEDICAL_NOTES = "b2d4f6a8-1c3e-4a5b-8d7f-9e0a1b2c3d4e"
SPEC_LEGAL_CONTRACTS = "d9e8f7a6-b5c4-4d3e-a2f1-0e9d8c7b6a5f"

#: Versions a spec made up by `accept_any_spec` has.
ANY_SPEC_VERSIONS = 10


@dataclass(frozen=True)
class SeedSpec:
    id: str
    name: str
    status: str
    versions: int
    description: str
    dataset_id: str
    dataset_name: str
    dataset_type: str
    error: str | None = None


SEED_SPECS: tuple[SeedSpec, ...] = (
    SeedSpec(
        id=SPEC_SUPPORT_TICKETS,
        name="support-tickets",
        status="SUCCEEDED",
        versions=3,
        description="Customer support tickets with subject, body, priority and resolution.",
        dataset_id="0b7c4a52-3f1e-4d8a-9c61-2e5f8a7b9d10",
        dataset_name="support-tickets-sample",
        dataset_type="SINGLE_FILE",
    ),
    SeedSpec(
        id=SPEC_PRODUCT_REVIEWS,
        name="product-reviews",
        status="SUCCEEDED",
        versions=2,
        description="E-commerce product reviews with rating, title and text.",
        dataset_id="1c8d5b63-4a2f-4e9b-8d72-3f6a9b8c0e21",
        dataset_name="product-reviews-seed",
        dataset_type="SINGLE_FILE",
    ),
    SeedSpec(
        id=SPEC_CHAT_TRANSCRIPTS,
        name="chat-transcripts",
        status="SUCCEEDED",
        versions=1,
        description="Multi-turn chat transcripts between agents and customers.",
        dataset_id="2d9e6c74-5b3a-4fac-9e83-4a7bac9d1f32",
        dataset_name="chat-transcripts",
        dataset_type="MULTI_FILE",
    ),
    SeedSpec(
        id=SPEC_MEDICAL_NOTES,
        name="medical-notes",
        status="PROCESSING",
        versions=1,
        description="Clinical visit notes (spec still being generated).",
        dataset_id="3eaf7d85-6c4b-4abd-8f94-5b8cbdae2a43",
        dataset_name="medical-notes",
        dataset_type="MULTI_FOLDER",
    ),
    SeedSpec(
        id=SPEC_LEGAL_CONTRACTS,
        name="legal-contracts",
        status="FAILED",
        versions=1,
        description="Commercial contracts (spec generation failed).",
        dataset_id="4fb08e96-7d5c-4bce-9fa5-6c9dcebf3b54",
        dataset_name="legal-contracts",
        dataset_type="SINGLE_FILE",
        error="Seed dataset could not be parsed: 3 files are not valid UTF-8",
    ),
)

#: Dollars per generated sample, by model; rough relative prices, not real ones.
MODEL_PRICE_PER_SAMPLE: dict[str, float] = {
    "anthropic/claude-opus-4-5": 0.060,
    "anthropic/claude-sonnet-4-5": 0.018,
    "anthropic/claude-haiku-4-5": 0.005,
    "deepseek-ai/DeepSeek-V3.1": 0.004,
    "deepseek-ai/DeepSeek-R1-0528-tput": 0.007,
    "Qwen/Qwen2.5-72B-Instruct-Turbo": 0.003,
    "moonshotai/Kimi-K2-Instruct": 0.004,
    "openai/gpt-oss-120b": 0.002,
    "gemini/gemini-3-pro-preview": 0.012,
}

#: Thinking models cost more: they bill their reasoning tokens.
THINKING_FACTOR = 1.6
#: Share of a sample's price the outline model adds.
OUTLINE_SHARE = 0.15
#: Generating field by field instead of all at once costs more.
NON_UNIFIED_FACTOR = 1.35


def model_price(model: str) -> float:
    """Dollars per sample for `model`; unknown models cost like a mid-range one."""
    if model.endswith("-thinking"):
        return MODEL_PRICE_PER_SAMPLE.get(model.removesuffix("-thinking"), 0.01) * THINKING_FACTOR
    return MODEL_PRICE_PER_SAMPLE.get(model, 0.01)


def price_per_sample(params: dict[str, object]) -> float:
    """Dollars per sample for a run's `runtime_params` (defaults already applied)."""
    price = model_price(str(params["generation_model"]))
    price += OUTLINE_SHARE * model_price(str(params["outline_model"]))
    if params.get("enable_revisions"):
        cycles = params.get("max_revision_cycles")
        n = cycles if isinstance(cycles, int) else 1
        # Each revision cycle re-reads and rewrites about half a sample.
        price += 0.5 * n * model_price(str(params["revision_model"]))
    if params.get("unified_multifield") is False:
        price *= NON_UNIFIED_FACTOR
    return price
