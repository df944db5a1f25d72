"""Helpers of the conformance tests: the SDK's models as the reference of every answer.

The SDK's response models are the reference for every answer the emulator gives
in its default mode: `conforms(Model, obj)` validates `obj` with the model
(pydantic) and also walks it key by key, because the SDK's models accept extra
keys silently (`extra="allow"`): a key the model does not name, at any level,
is reported too.

Only the standard library is imported at the top, so that a missing SDK fails
the tests that use it, not the collection of the whole folder.
"""

from __future__ import annotations

import importlib.util
import inspect
import types
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin

from dfr_emulator import SPEC_SUPPORT_TICKETS

if TYPE_CHECKING:
    import pydantic

KEY = "dfr-conformance-key-7c2e91"
AUTH = {"Authorization": f"Bearer {KEY}"}
RUNS = "/api/dataframer/runs/"
SPECS = "/api/dataframer/specs/"
BODY: dict[str, Any] = {"spec_id": SPEC_SUPPORT_TICKETS, "number_of_samples": 100}

T = TypeVar("T")


def unknown_keys(annotation: Any, value: Any, path: str = "$") -> list[str]:
    """Every key in `value`, at any depth, that the type `annotation` does not name."""
    import pydantic

    if value is None:
        return []
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        arms = [arm for arm in get_args(annotation) if arm is not type(None)]
        return [] if not arms else unknown_keys(arms[0], value, path)
    if origin is Literal or annotation in (Any, object):
        return []
    if origin is list:
        (item,) = get_args(annotation)
        if not isinstance(value, list):
            return []  # model_validate reports the type
        return [e for i, v in enumerate(value) for e in unknown_keys(item, v, f"{path}[{i}]")]
    if origin is dict:
        _, item = get_args(annotation)
        if not isinstance(value, dict):
            return []
        return [e for k, v in value.items() for e in unknown_keys(item, v, f"{path}.{k}")]
    if inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel):
        if not isinstance(value, dict):
            return []
        fields = {(f.alias or name): f.annotation for name, f in annotation.model_fields.items()}
        errors = []
        for key, item in value.items():
            if key not in fields:
                errors.append(f"{path}.{key}: not a field of {annotation.__name__}")
            else:
                errors.extend(unknown_keys(fields[key], item, f"{path}.{key}"))
        return errors
    return []


def conforms(annotation: Any, value: Any) -> list[str]:
    """Problems of `value` as an instance of `annotation` (an SDK model or List[model]):
    pydantic's validation errors, then keys the models do not name. Empty: it conforms."""
    import pydantic

    problems: list[str] = []
    try:
        pydantic.TypeAdapter(annotation).validate_python(value)
    except pydantic.ValidationError as exc:
        problems.extend(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    problems.extend(unknown_keys(annotation, value))
    return problems


def model_keys(model: type[pydantic.BaseModel]) -> set[str]:
    return {(f.alias or name) for name, f in model.model_fields.items()}


def reference_errors(model: type[pydantic.BaseModel], body: Any) -> list[dict[str, Any]]:
    """What FastAPI answers for `body` with the reference `model` (sorted by loc)."""
    import pydantic

    try:
        model.model_validate(body)
    except pydantic.ValidationError as exc:
        items = [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors(include_url=False)]
        return sorted(items, key=lambda i: [str(p) for p in i["loc"]])
    return []


def all_present(values: Iterable[T | None]) -> list[T]:
    """`values` as a list; every one must be there (a field the SDK types as optional)."""
    present: list[T] = []
    for value in values:
        assert value is not None
        present.append(value)
    return present


def load_script(path: Path, name: str) -> types.ModuleType:
    """The script at `path`, imported afresh as module `name` (its `main` not run)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
