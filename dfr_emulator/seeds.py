"""Built-in specs and the price list: the fixed world every emulator starts with.

Seed specs (ids are stable and lower case, so examples and tests can name them):

    SPEC_SUPPORT_TICKETS   3c90c3cc-0d44-4b50-8888-8dd25736052a  support-tickets   SUCCEEDED v1..3
    SPEC_PRODUCT_REVIEWS   6f1c2b7e-8a4d-4c3e-9b2a-1d5e7f9a0b3c  product-reviews   SUCCEEDED v1..2
    SPEC_CHAT_TRANSCRIPTS  7a1e5c3d-2b4f-4e6a-9c8d-0f1e2d3c4b5a  chat-transcripts  SUCCEEDED v1
    SPEC_MEDICAL_NOTES     b2d4f6a8-1c3e-4a5b-8d7f-9e0a1b2c3d4e  medical-notes     PROCESSING
    SPEC_LEGAL_CONTRACTS   d9e8f7a6-b5c4-4d3e-a2f1-0e9d8c7b6a5f  legal-contracts   FAILED
    SPEC_INSURANCE_CLAIMS  5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b  insurance-claims  SUCCEEDED v1..2

A PROCESSING or FAILED spec has no version yet (`versions` is empty) and
no `content_yaml`; FAILED has its `error`.

`support-tickets` is the spec of the seed page's example request.

`insurance-claims` belongs to a customer-hosted deployment: its YAML lives in
the customer's own cloud, so the API answers `content_yaml: null`,
`content_unavailable_reason: "spec_content_in_data_plane"` and a
`content_location` pointer (the SDK's DataPlaneContentLocation) for the spec
and for each version. It is ready (SUCCEEDED): runs can use it.

Every seed spec has a seed dataset, so `enable_revisions: true` alone turns on
`distinguishability` too (it is for seeded specs only).

In legacy mode the same specs are shown the old page's way (`latest_version`,
numbered versions with a status; PROCESSING and FAILED specs show a version 1).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

SPEC_SUPPORT_TICKETS = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
SPEC_PRODUCT_REVIEWS = "6f1c2b7e-8a4d-4c3e-9b2a-1d5e7f9a0b3c"
SPEC_CHAT_TRANSCRIPTS = "7a1e5c3d-2b4f-4e6a-9c8d-0f1e2d3c4b5a"
SPEC_MEDICAL_NOTES = "b2d4f6a8-1c3e-4a5b-8d7f-9e0a1b2c3d4e"
SPEC_LEGAL_CONTRACTS = "d9e8f7a6-b5c4-4d3e-a2f1-0e9d8c7b6a5f"
SPEC_INSURANCE_CLAIMS = "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b"

#: Versions a spec made up by `accept_any_spec` has.
ANY_SPEC_VERSIONS = 10

#: The made-up company and bucket of the customer-hosted deployment.
DATA_PLANE_COMPANY = "c0ffee00-0000-4000-8000-00000000d00d"
DATA_PLANE_BUCKET = "acme-dataframer-data-plane"


def data_plane_location(key: str, data: bytes) -> dict[str, Any]:
    """Where `data` lies in the customer's bucket, at `key` (the SDK's
    DataPlaneContentLocation: what the API answers instead of the content)."""
    return {
        "data_plane": True,
        "s3_key": key,
        "storage_uri": f"s3://{DATA_PLANE_BUCKET}/{key}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes_size": len(data),
    }


#: What the seed specs say they were generated with (`runtime_params` of a spec).
SPEC_RUNTIME_PARAMS: dict[str, Any] = {
    "spec_generation_model_name": "anthropic/claude-sonnet-5-5-thinking",
    "extrapolate_values": True,
    "extrapolate_axes": False,
    "generate_distributions": True,
    "generate_conditional_distributions": False,
}


@dataclass(frozen=True)
class SeedSpec:
    id: str
    name: str
    status: str
    versions: int
    description: str | None
    dataset_id: str | None
    dataset_name: str | None
    dataset_type: str
    error: str | None = None
    created_by_email: str = "data-team@example.com"
    #: The YAML lives in the customer's cloud (a data-plane pointer instead).
    data_plane: bool = False
    #: Property name -> values, the made-up heart of every version's YAML.
    properties: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def content_yaml(self, version: int) -> str:
        """The YAML of `version` (1-based): a `spec:` root, as the API keeps it."""
        lines = [
            "spec:",
            f"  description: {json.dumps(self.description)}",
            "  requirements: |-",
            f"    Each sample is one {self.name.rstrip('s').replace('-', ' ')}.",
            f"    Revision {version} of these requirements.",
            "  data_property_variations:",
        ]
        props = self.properties or (("tone", ("neutral", "formal", "casual")),)
        # Later versions add a value to the first property, so versions differ.
        for index, (name, values) in enumerate(props):
            shown = list(values) + (
                [f"variant-{n}" for n in range(2, version + 1)] if index == 0 else []
            )
            lines.append(f"    - property_name: {name}")
            lines.append(f"      property_values: [{', '.join(shown)}]")
        return "\n".join(lines) + "\n"

    def content_location(self, version: int) -> dict[str, Any]:
        """The data-plane pointer to `version`'s YAML (SDK's DataPlaneContentLocation)."""
        key = f"dataframer/{DATA_PLANE_COMPANY}/Specs/{self.id}/versions/{version}/spec.yaml"
        text = self.content_yaml(version).encode()
        return {**data_plane_location(key, text), "version": version}


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
        properties=(
            ("priority", ("low", "medium", "high", "urgent")),
            ("channel", ("email", "chat", "phone")),
        ),
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
        properties=(("rating", ("1", "2", "3", "4", "5")),),
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
        created_by_email="support-ops@example.com",
        properties=(("outcome", ("resolved", "escalated", "abandoned")),),
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
    SeedSpec(
        id=SPEC_INSURANCE_CLAIMS,
        name="insurance-claims",
        status="SUCCEEDED",
        versions=2,
        description="Insurance claim files kept in the customer's own cloud (data plane).",
        dataset_id="5ac19fa7-8e6d-4cdf-a0b6-7daedfc04c65",
        dataset_name="insurance-claims",
        dataset_type="MULTI_FILE",
        created_by_email="claims-team@example.com",
        data_plane=True,
        properties=(("claim_type", ("auto", "home", "travel")),),
    ),
)

#: Dollars per generated sample, by model without its `-thinking` suffix (a
#: `-thinking` model costs THINKING_FACTOR times its base). Every current model
#: and every model of the old page has a price here; made up, roughly relative.
MODEL_PRICE_PER_SAMPLE: dict[str, float] = {
    # current models (the official SDK's list)
    "anthropic/claude-fable-5-1": 0.090,
    "anthropic/claude-opus-5-5": 0.055,
    "anthropic/claude-sonnet-5-5": 0.016,
    "anthropic/claude-haiku-4-5": 0.005,
    "gemini/gemini-3.1-pro-preview": 0.011,
    "openai/gpt-oss-120b": 0.002,
    "deepseek-ai/DeepSeek-V4-Pro-0813": 0.005,
    "moonshotai/Kimi-K3": 0.006,
    "moonshotai/Kimi-K2.6": 0.004,
    "openai/gpt-6-astra": 0.030,
    "openai/gpt-6.1-sol": 0.040,
    "openai/gpt-5.6-terra": 0.012,
    "openai/gpt-6-luna": 0.008,
    "databricks/system.ai.claude-haiku-4-5": 0.006,
    "databricks/system.ai.claude-sonnet-5": 0.017,
    "databricks/system.ai.claude-opus-5": 0.058,
    "databricks/system.ai.gpt-6-astra": 0.032,
    "databricks/system.ai.gpt-6-1-sol": 0.042,
    "databricks/system.ai.gpt-5-6-terra": 0.013,
    "databricks/system.ai.gpt-5-6-luna": 0.009,
    "databricks/system.ai.deepseek-v4-pro-0813": 0.006,
    # the old page's models (legacy mode)
    "anthropic/claude-opus-4-5": 0.060,
    "anthropic/claude-sonnet-4-5": 0.018,
    "deepseek-ai/DeepSeek-V3.1": 0.004,
    "deepseek-ai/DeepSeek-R1-0528-tput": 0.007,
    "Qwen/Qwen2.5-72B-Instruct-Turbo": 0.003,
    "moonshotai/Kimi-K2-Instruct": 0.004,
    "gemini/gemini-3-pro-preview": 0.012,
}

#: Price of a model missing from the list (a made-up spec's, say): a mid-range one.
UNKNOWN_MODEL_PRICE = 0.01
#: Thinking models cost more: they bill their reasoning tokens.
THINKING_FACTOR = 1.6
#: Share of a sample's price the outline model adds (none with `skip_outline`).
OUTLINE_SHARE = 0.15
#: Generating field by field instead of all at once costs more.
NON_UNIFIED_FACTOR = 1.35
#: Tools "roughly double cost and time".
TOOLS_FACTOR = 2.0


def model_price(model: str) -> float:
    """Dollars per sample for `model`; unknown models cost like a mid-range one."""
    if model.endswith("-thinking"):
        base = model.removesuffix("-thinking")
        return MODEL_PRICE_PER_SAMPLE.get(base, UNKNOWN_MODEL_PRICE) * THINKING_FACTOR
    return MODEL_PRICE_PER_SAMPLE.get(model, UNKNOWN_MODEL_PRICE)


def price_per_sample(params: dict[str, Any]) -> float:
    """Dollars per sample for a run's `runtime_params` (either shape, defaults applied)."""
    price = model_price(str(params["generation_model"]))
    if not params.get("skip_outline"):
        price += OUTLINE_SHARE * model_price(str(params["outline_model"]))
    revising = bool(
        params.get("enable_revisions")
        or params.get("revision_types")
        or params.get("filtering_types")
    )
    if revising and params.get("revision_model"):
        cycles = params.get("max_revision_cycles")
        n = cycles if isinstance(cycles, int) else 1
        # Each revision cycle re-reads and rewrites about half a sample.
        price += 0.5 * n * model_price(str(params["revision_model"]))
    if params.get("tools"):
        price *= TOOLS_FACTOR
    if params.get("unified_multifield") is False:
        price *= NON_UNIFIED_FACTOR
    return price
