"""The validation cache: same results as without it, invalidation, corruption, safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler import vcache
from reconciler.policy import Policy, manifest_checks
from reconciler.validate import ValidationResult, validate_paths
from reconciler.vcache import ValidationCache

SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def manifest(name: str, samples: int = 100, extra: str = "") -> str:
    return (
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
        f"metadata:\n  name: {name}\n  labels: {{team: a}}\n"
        f"spec:\n  spec_id: {SPEC_ID}\n  spec_version: 2\n  number_of_samples: {samples}\n" + extra
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "cache"
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    d = tmp_path / "manifests"
    d.mkdir()
    (d / "a.yaml").write_text(manifest("a"))
    (d / "two.yaml").write_text(manifest("b", 5) + "---\n" + manifest("c", 7))
    (d / "other.yaml").write_text("kind: ConfigMap\nvalue: 1\n")  # skipped: not a manifest
    (d / "bad.yaml").write_text(manifest("d", 0))  # schema error: never cached
    (d / "warn.yaml").write_text(manifest("e", extra="  max_revision_cycles: 2\n"))  # warning
    return d


def run(paths: list[str], root: Path, **kw: object) -> tuple[ValidationResult, ValidationCache]:
    cache = ValidationCache.open(root)
    assert cache is not None
    return validate_paths(paths, cache=cache, **kw), cache  # type: ignore[arg-type]


def same(a: ValidationResult, b: ValidationResult) -> None:
    assert a.manifests == b.manifests
    assert a.diagnostics == b.diagnostics
    assert (a.files, a.documents, a.skipped) == (b.files, b.documents, b.skipped)


def test_cached_results_equal_fresh_ones(tree: Path, root: Path) -> None:
    fresh = validate_paths([str(tree)])
    first, cache = run([str(tree)], root)
    assert cache.hits == 0
    second, cache = run([str(tree)], root)
    # a, two, other are clean: cached; bad and warn are read afresh every time.
    assert (cache.hits, cache.misses) == (3, 2)
    same(fresh, first)
    same(fresh, second)
    assert [m.name for m in second.manifests] == ["a", "b", "c", "e"]
    assert second.manifests[1].where.endswith("two.yaml:4:9")


def test_examples_and_corpus_agree_with_and_without_cache(root: Path) -> None:
    here = Path(__file__).resolve().parents[2]
    paths = [str(here / "examples"), str(here / "tests" / "corpus")]
    fresh = validate_paths(paths)
    run(paths, root)
    again, _ = run(paths, root)
    same(fresh, again)


def test_changed_file_is_read_again(tree: Path, root: Path) -> None:
    run([str(tree)], root)
    (tree / "a.yaml").write_text(manifest("a", 0))  # now invalid
    result, _ = run([str(tree)], root)
    assert any(
        "number_of_samples" in d.message and d.file.endswith("a.yaml") for d in result.diagnostics
    )
    assert "a" not in [m.name for m in result.manifests]
    (tree / "a.yaml").write_text(manifest("a", 42))
    result, _ = run([str(tree)], root)
    assert next(m for m in result.manifests if m.name == "a").spec["number_of_samples"] == 42


def test_a_new_dfr_version_or_schema_misses(
    tree: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run([str(tree)], root)
    import reconciler

    monkeypatch.setattr(reconciler, "__version__", "99.0.0")
    _, cache = run([str(tree)], root)
    assert cache.hits == 0
    monkeypatch.undo()
    _, cache = run([str(tree)], root)
    assert cache.hits == 3
    real_salt = vcache.salt()
    monkeypatch.setattr(vcache, "salt", lambda: b"another schema or code")
    _, cache = run([str(tree)], root)
    assert cache.hits == 0
    assert real_salt != b"another schema or code"


def test_salt_covers_the_deciding_sources() -> None:
    assert set(vcache._DECIDING_MODULES) >= {"yamlsafe", "manifests", "validate", "schema"}
    assert vcache.salt() == vcache.salt()


def test_strictness_is_part_of_the_key(tree: Path, root: Path) -> None:
    # Found in a directory, a ConfigMap is skipped; named on the command line it is an error.
    run([str(tree)], root)
    result, _ = run([str(tree / "other.yaml")], root)
    assert [d.code for d in result.diagnostics] == ["not-a-manifest"]


def test_extra_models_are_part_of_the_key_as_a_set(root: Path) -> None:
    cache = ValidationCache.open(root)
    assert cache is not None
    data = manifest("a").encode()
    plain = cache.key(data, True)
    assert cache.key(data, True, ()) == plain
    both = cache.key(data, True, ["acme/x", "acme/y"])
    assert both != plain
    assert cache.key(data, True, ["acme/y", "acme/x", "acme/x"]) == both
    assert cache.key(data, True, ["acme/x"]) not in (plain, both)
    # The models cannot pass for the start of the bytes, nor the other way round.
    assert cache.key(b'["acme/x"]' + data, True) != cache.key(data, True, ["acme/x"])


def test_a_file_clean_only_thanks_to_extra_models_is_not_clean_without_them(
    tmp_path: Path, root: Path
) -> None:
    path = tmp_path / "new.yaml"
    path.write_text(manifest("n", extra="  generation_model: acme/new-model-9\n"))
    for _ in range(2):
        result, cache = run([str(path)], root, extra_models=["acme/new-model-9"])
        assert result.diagnostics == []
    assert cache.hits == 1
    result, cache = run([str(path)], root, extra_models=[])
    assert cache.hits == 0
    assert [d.code for d in result.diagnostics] == ["schema"]
    assert result.manifests == []


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"not json",
        b'{"version": 1, "entries": []}',
        b'{"version": 999, "entries": {}}',
        b"[1, 2]",
    ],
)
def test_corrupt_shards_are_ignored_and_replaced(tree: Path, root: Path, damage: bytes) -> None:
    fresh = validate_paths([str(tree)])
    run([str(tree)], root)
    shards = list((root / "validate-v1").glob("*.json"))
    assert shards
    for shard in shards:
        shard.write_bytes(damage)
    result, cache = run([str(tree)], root)
    same(fresh, result)
    assert cache.hits == 0
    _, cache = run([str(tree)], root)
    assert cache.hits == 3  # rewritten


def test_ill_formed_entries_are_misses(tree: Path, root: Path) -> None:
    fresh = validate_paths([str(tree)])
    run([str(tree)], root)
    for shard in (root / "validate-v1").glob("*.json"):
        doc = json.loads(shard.read_text())
        for key in doc["entries"]:
            doc["entries"][key] = {"d": 1, "s": 0, "m": [["x", "not a spec", {}, 1, 1, 0]]}
        shard.write_text(json.dumps(doc))
    result, cache = run([str(tree)], root)
    assert cache.hits == 0
    same(fresh, result)


def test_cache_writable_by_others_is_not_used(tree: Path, root: Path) -> None:
    run([str(tree)], root)
    os.chmod(root, 0o777)
    assert ValidationCache.open(root) is None
    os.chmod(root, 0o700)
    for shard in (root / "validate-v1").glob("*.json"):
        os.chmod(shard, 0o666)
    _, cache = run([str(tree)], root)
    assert cache.hits == 0


def test_unwritable_cache_folder_is_not_an_error(tree: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert ValidationCache.open(blocker / "cache") is None


def test_policy_runs_on_cached_manifests_with_exact_places(tree: Path, root: Path) -> None:
    policy = Policy(max_samples_per_run=50, required_labels=("owner",), source="dfr.yaml")
    checks = manifest_checks(policy)
    fresh = validate_paths([str(tree)], checks=checks)
    run([str(tree)], root)  # filled without a policy
    cached, cache = run([str(tree)], root, checks=checks)
    assert cache.hits == 3
    same(fresh, cached)
    assert any(d.code == "policy" and d.file.endswith("a.yaml") for d in cached.diagnostics)


def test_duplicate_names_across_cached_files_are_still_found(tree: Path, root: Path) -> None:
    run([str(tree)], root)
    (tree / "z.yaml").write_text(manifest("a"))
    run([str(tree)], root)
    result, cache = run([str(tree)], root)
    assert cache.hits == 4
    assert [d.code for d in result.diagnostics if d.code == "duplicate-name"] == ["duplicate-name"]
    assert "a" not in [m.name for m in result.manifests]


def test_shards_stay_bounded(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vcache, "MAX_PER_SHARD", 3)
    cache = ValidationCache.open(root)
    assert cache is not None
    keys = [f"00{i:038d}" for i in range(5)]
    for key in keys:
        cache.put(key, vcache.entry(0, 0, []))
    cache.flush()
    again = ValidationCache.open(root)
    assert again is not None
    assert [again.get(k) is not None for k in keys] == [False, False, True, True, True]


def test_cli_no_cache_and_env(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from reconciler.cli import cli

    folder = tmp_path / "clicache"
    monkeypatch.setenv("DFR_CACHE_DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    target = str(tree / "a.yaml")
    assert runner.invoke(cli, ["validate", "--no-cache", target]).exit_code == 0
    assert not folder.exists()
    monkeypatch.setenv("DFR_NO_CACHE", "1")
    assert runner.invoke(cli, ["validate", target]).exit_code == 0
    assert not folder.exists()
    monkeypatch.delenv("DFR_NO_CACHE")
    assert runner.invoke(cli, ["validate", target]).exit_code == 0
    assert list((folder / "validate-v1").glob("*.json"))
