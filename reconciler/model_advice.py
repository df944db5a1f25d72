"""Advice on a valid manifest: settings the schema allows but the current API refuses,
deprecates or ignores (models it no longer lists, legacy revision settings, thinking
budgets on models without thinking). Each is a warning at the value it is about."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reconciler import diagnostics as diag
from reconciler import schema
from reconciler.diagnostics import Diagnostic
from reconciler.manifests import Manifest, SourceFile
from reconciler.matching import revisions_on
from reconciler.yamlsafe import Document, locate, position


def cross_field_warnings(
    source: SourceFile, doc: Document, m: Manifest, extra: tuple[str, ...] = ()
) -> list[Diagnostic]:
    """Settings the schema allows but the current API refuses, deprecates or ignores.

    Each is a warning at the value it is about; `extra` (dfr.yaml's
    extra_models) are models the user vouches for, so none warns.
    """
    out: list[Diagnostic] = []
    for key, message, code in _advice(m.spec, extra):
        line, col = position(locate(doc.node, ("spec", key)))
        out.append(diag.warning(message, source.display, line, col, code=code, path=("spec", key)))
    return out


#: What `enable_revisions: true` turns on, as the current API's own fields.
REVISIONS_ON = (
    "revision_types: [coherence_flow, consistency, conformance] (add distinguishability "
    "for a seeded spec) and filtering_types: [structural]"
)
#: The settings that matter only while revisions or filtering run.
REVISION_ONLY = ("revision_model", "max_revision_cycles", "revision_thinking_budget")


def _advice(spec: dict[str, Any], extra: tuple[str, ...]) -> Iterator[tuple[str, str, str]]:
    """(key, message, code) for each setting of `spec` worth a warning, in the schema's order."""
    current = schema.current_model_set()
    for key in schema.MODEL_FIELDS:
        model = spec.get(key)
        if isinstance(model, str) and model not in current and model not in extra:
            yield key, _legacy_message(key, model), "legacy-model"
    if "enable_revisions" in spec:
        yield "enable_revisions", _deprecated_revisions(spec), "deprecated"
    # As the planner reads it: revision_types / filtering_types decide when given.
    revisions = revisions_on(spec, {}) is True
    for budget, field_name in schema.THINKING_BUDGETS.items():
        model = spec.get(field_name)
        if budget not in spec or not isinstance(model, str) or schema.is_thinking(model):
            continue
        if budget in REVISION_ONLY and not revisions:
            continue  # the warning below says more
        yield budget, _budget_message(budget, field_name, model, extra), "no-effect"
    if not revisions:
        for key in REVISION_ONLY:
            if key in spec:
                yield (
                    key,
                    f"spec.{key} has no effect: no revision or filtering runs (spec sets "
                    "neither revision_types nor filtering_types); add one of them, or remove "
                    f"{key}",
                    "no-effect",
                )


def _legacy_message(key: str, model: str) -> str:
    closest = schema.closest_current_model(model)
    instead = (
        f"the closest current model is {closest!r}"
        if closest
        else "no current model is close (`dfr schema` lists them under $defs/current_model)"
    )
    return (
        f"spec.{key}: {model!r} is a model of the old reference page that the current API "
        f"(pydataframer {schema.sdk_version()}) does not list, so the service will refuse the "
        f"run; {instead}; if you know the service still takes it, allow it with "
        f"'extra_models: [{model}]' in dfr.yaml"
    )


def _deprecated_revisions(spec: dict[str, Any]) -> str:
    head = "spec.enable_revisions is deprecated by the current API"
    if "revision_types" in spec or "filtering_types" in spec:
        return (
            f"{head}; this spec already chooses its revisions with revision_types or "
            "filtering_types: list everything you want there and remove enable_revisions"
        )
    if spec["enable_revisions"]:
        return f"{head}; write what it turns on instead: {REVISIONS_ON}"
    return f"{head}; remove it: no revisions is the default"


def _budget_message(budget: str, field_name: str, model: str, extra: tuple[str, ...]) -> str:
    thinking = model + schema.THINKING_SUFFIX
    known = thinking in schema.current_model_set() or thinking in extra
    fix = f"use {thinking!r}" if known else "use a -thinking model"
    return (
        f"spec.{budget} has no effect: the API uses a thinking budget only with a -thinking "
        f"model, and spec.{field_name} is {model!r}; {fix} or remove {budget}"
    )
