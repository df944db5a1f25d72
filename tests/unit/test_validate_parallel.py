"""Parsing in worker processes gives exactly what one process gives, in the same order."""

from __future__ import annotations

import json
import multiprocessing
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler import validate
from reconciler.policy import Policy, manifest_checks, unpinned_version
from reconciler.validate import ValidationResult, validate_paths
from reconciler.validate_pool import examine_in_pool
from reconciler.vcache import ValidationCache

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "bad"
SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
CHECKS = [
    *manifest_checks(Policy(max_samples_per_run=500, required_labels=("team",))),
    unpinned_version,
]


def manifest(name: str, samples: int = 100, *, labels: str = "{team: a}", extra: str = "") -> str:
    return (
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
        f"metadata:\n  name: {name}\n  labels: {labels}\n"
        f"spec:\n  spec_id: {SPEC_ID}\n  number_of_samples: {samples}\n" + extra
    )


def mixed_text(i: int, rng: random.Random) -> str:
    """A file of one of many kinds: valid, invalid, clashing, not a manifest, broken YAML."""
    kind = rng.randrange(12)
    name = f"run-{i:05d}"
    if kind == 0:
        return manifest(name, 0)  # schema error
    if kind == 1:
        return manifest(f"run-{rng.randrange(i + 1):05d}")  # often a duplicate name
    if kind == 2:
        return "kind: ConfigMap\nvalue: 1\n"  # skipped
    if kind == 3:
        return "metadata: {name: x}\nspec: {spec_id: y}\n"  # looks like a run: a warning
    if kind == 4:
        return manifest(name) + "  bad: [unclosed\n"  # YAML error
    if kind == 5:
        return manifest(name, 7) + "---\n" + manifest(name + "-b", 900)  # two; policy finding
    if kind == 6:
        return manifest(name, extra="  max_revision_cycles: 2\n")  # no-effect warning
    if kind == 7:
        return manifest(name, labels="{}")  # policy: a label is missing
    if kind == 8:
        return manifest("same-content")  # identical bytes in many files
    if kind == 9:
        return manifest(name, extra="  spec_version: 3\n")  # pinned: clean
    if kind == 10:
        return manifest(name, extra="  number_of_sampels: 3\n")  # did you mean
    return manifest(name, rng.randrange(1, 400)) + "---\n"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("mixed")
    rng = random.Random(7)
    for i in range(3000):
        folder = top / f"d{i % 7}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i:05d}.yaml").write_text(mixed_text(i, rng), encoding="utf-8")
    return top


@pytest.fixture(autouse=True)
def pool_used(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Whether each call found a pool (True) or parsed in this process (False)."""
    calls: list[bool] = []
    real = examine_in_pool  # what validate calls

    def spy(*args: Any) -> Any:
        out = real(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(validate, "_examine_in_pool", spy)
    yield calls
    assert multiprocessing.active_children() == []  # no worker left behind


def both(paths: list[str], tmp_path: Path | None = None, **kw: Any) -> tuple[Any, Any]:
    """(one process, two processes) for the same input; with a cache in `tmp_path`."""
    out = []
    for jobs in (1, 2):
        cache = None
        if tmp_path is not None:
            cache = ValidationCache.open(tmp_path / f"cache{jobs}")
            assert cache is not None
        result = validate_paths(paths, jobs=jobs, parallel_min=1, cache=cache, **kw)
        out.append((result, cache))
    return out[0], out[1]


def same(a: ValidationResult, b: ValidationResult) -> None:
    assert a.diagnostics == b.diagnostics
    assert a.manifests == b.manifests
    assert a.names == b.names
    assert (a.files, a.documents, a.skipped) == (b.files, b.documents, b.skipped)
    assert a == b
    assert a.to_json() == b.to_json()


def shards(cache: ValidationCache) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.folder.iterdir())}


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("as_files", [False, True])
def test_bad_corpus_same_in_parallel(skip: bool, as_files: bool, pool_used: list[bool]) -> None:
    paths = sorted(map(str, CORPUS.iterdir())) if as_files else [str(CORPUS)]
    (one, _), (two, _) = both(paths, skip_non_manifests=skip, checks=CHECKS)
    same(one, two)
    assert one.errors > 20
    assert pool_used == [True]


def test_bad_corpus_same_in_parallel_with_cache(tmp_path: Path, pool_used: list[bool]) -> None:
    (one, c1), (two, c2) = both([str(CORPUS)], tmp_path, checks=CHECKS)
    same(one, two)
    assert shards(c1) == shards(c2)
    assert pool_used == [True]


def test_mixed_files_same_in_parallel(mixed: Path, tmp_path: Path, pool_used: list[bool]) -> None:
    paths = [str(mixed / "d3"), str(mixed), str(mixed / "d1" / "f00001.yaml")]
    (one, _), (two, _) = both(paths, checks=CHECKS)
    same(one, two)
    codes = {d.code for d in one.diagnostics}
    assert {"schema", "duplicate-name", "not-a-manifest", "no-effect", "policy"} <= codes
    assert one.files == 3000 and len(one.manifests) > 500

    # With a cache: cold (every file parsed, identical files hit the entry the first
    # one left), then warm (only the files with findings parsed again).
    for _ in range(2):
        (one, c1), (two, c2) = both(paths, tmp_path, checks=CHECKS)
        same(one, two)
        assert (c1.hits, c1.misses) == (c2.hits, c2.misses)
        assert c1.hits > 0
        assert shards(c1) == shards(c2)
    assert pool_used == [True, True, True]


def test_damaged_cache_entries_are_parsed_again(
    mixed: Path, tmp_path: Path, pool_used: list[bool]
) -> None:
    paths = [str(mixed / "d5"), str(mixed / "d6")]
    (one, c1), (two, c2) = both(paths, tmp_path, checks=CHECKS)
    for cache in (c1, c2):  # every other entry of each shard no longer has the right shape
        for shard in cache.folder.iterdir():
            entries = json.loads(shard.read_text())
            for key in list(entries)[::2]:
                entries[key] = {"d": "x"}
            shard.write_text(json.dumps(entries))
    (one, c1), (two, c2) = both(paths, tmp_path, checks=CHECKS)
    same(one, two)
    assert (c1.hits, c1.misses) == (c2.hits, c2.misses)
    assert c1.misses > 0 and c1.hits > 0
    assert shards(c1) == shards(c2)
    assert pool_used == [True, True]


def test_below_the_threshold_one_process(mixed: Path, pool_used: list[bool]) -> None:
    folder = str(mixed / "d0")
    few = validate_paths([folder], jobs=2, parallel_min=10_000)
    same(validate_paths([folder]), few)
    assert pool_used == []


def test_no_fork_or_other_threads_parse_here(
    mixed: Path, monkeypatch: pytest.MonkeyPatch, pool_used: list[bool]
) -> None:
    folder = str(mixed / "d2")
    expected = validate_paths([folder], checks=CHECKS)
    with monkeypatch.context() as patch:
        patch.setattr("threading.active_count", lambda: 2)
        same(expected, validate_paths([folder], checks=CHECKS, jobs=2, parallel_min=1))

    def no_fork(method: str | None = None) -> Any:
        raise ValueError(f"cannot find context for {method!r}")

    monkeypatch.setattr(multiprocessing, "get_context", no_fork)
    same(expected, validate_paths([folder], checks=CHECKS, jobs=2, parallel_min=1))
    assert pool_used == [False, False]


def test_a_failing_check_stops_the_workers(mixed: Path) -> None:
    def boom(file: str, doc: Any, manifest: Any) -> list[Any]:
        raise RuntimeError("check failed")

    with pytest.raises(RuntimeError, match="check failed"):
        validate_paths([str(mixed / "d4")], checks=[boom], jobs=2, parallel_min=1)
    # the fixture asserts that no worker is left


def test_jobs_flag_over_env_over_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.invocation import Flags, Invocation

    assert Invocation.build(Flags(), {"DFR_JOBS": "1"}).jobs == 1
    assert Invocation.build(Flags(), {}).jobs >= 1
    assert Invocation.build(Flags(jobs=3), {"DFR_JOBS": "1"}).jobs == 3


# -- dfr.yaml's extra_models reach the workers and the cache key -------------------------------

NEW = "acme/new-model-9"
LEGACY = "anthropic/claude-sonnet-4-5"


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty files naming a model this release does not know, an old one, or a current one."""
    top = tmp_path_factory.mktemp("models")
    models = [NEW, LEGACY, "openai/gpt-6-astra"]
    for i in range(40):
        extra = f"  generation_model: {models[i % 3]}\n"
        (top / f"m{i:02d}.yaml").write_text(manifest(f"m-{i:02d}", extra=extra), encoding="utf-8")
    return top


def test_extra_models_same_in_parallel_with_and_without_a_cache(
    model_files: Path, tmp_path: Path, pool_used: list[bool]
) -> None:
    paths = [str(model_files)]
    with_extra = {"checks": CHECKS, "extra_models": (NEW, LEGACY)}
    for cache_dir in (None, tmp_path, tmp_path):  # no cache, cold, warm
        (one, c1), (two, _) = both(paths, cache_dir, **with_extra)
        same(one, two)
        assert one.errors == 0 and len(one.manifests) == 40
        assert {d.code for d in one.diagnostics} == {"unpinned-version"}
    assert c1 is not None and c1.hits == 40
    # Without them, the same cache serves nothing stale: errors and warnings are back.
    (one, c1), (two, _) = both(paths, tmp_path, checks=CHECKS, extra_models=())
    same(one, two)
    assert c1 is not None and c1.hits == 0  # another list of models: other keys
    codes = [d.code for d in one.diagnostics if d.code != "unpinned-version"]
    assert codes.count("schema") == 14 and codes.count("legacy-model") == 13
    assert pool_used == [True, True, True]  # not warm: nothing was left to parse


def test_extra_models_reach_the_workers(model_files: Path, pool_used: list[bool]) -> None:
    expected = validate_paths([str(model_files)], extra_models=(NEW, LEGACY))
    assert validate_paths([str(model_files)]).errors == 14  # without them: refused
    same(
        expected,
        validate_paths([str(model_files)], extra_models=(NEW, LEGACY), jobs=2, parallel_min=1),
    )
    assert pool_used == [True]
