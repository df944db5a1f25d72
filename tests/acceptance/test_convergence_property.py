"""Property: applying a plan converges, whatever the manifests and the prior state.

For random manifest sets and random prior states (made by applying an
earlier random manifest set through the CLI, then mutating the state the way
people and the API do: records removed, recorded specs changed, runs forced
FAILED, runs gone from the API, stale statuses), `dfr apply` then `dfr plan`
gives:

- no `create` and no `replace`: every manifest has a run matching its spec;
- `orphan` exactly for the recorded names with no manifest, and none after
  `apply --prune`;
- FAILED runs stay `noop` flagged failed (never resubmitted unasked), except
  the ones named with `--replace`, which are resubmitted once;
- the apply sent exactly one create POST per create/replace of its plan, and
  applying again sends none.

Bounded and deterministic: 25 examples (derandomized by tests/conftest.py's
profile), one emulator for the module whose runs end the moment they are made
(`--no-wait` keeps each apply to its POSTs).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st
from support.emulators import KEY
from support.runner import assert_clean
from support.workspace import manifest_doc

from dfr_emulator import Emulator, EmulatorConfig
from reconciler.schema import models

NAMES = [f"run-{i}" for i in range(6)]
SPEC_IDS = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
]


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "spec_id": draw(st.sampled_from(SPEC_IDS)),
        "number_of_samples": draw(st.sampled_from([1, 10, 500, 20000])),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "spec_version": st.integers(1, 10),
        "generation_model": st.sampled_from(models()),
        "outline_model": st.sampled_from(models()),
        "enable_revisions": st.booleans(),
        "max_revision_cycles": st.integers(1, 5),
        "seed_shuffling_level": st.sampled_from(["none", "sample", "field", "prompt"]),
        "max_examples_in_prompt": st.integers(1, 50),
        "unified_multifield": st.booleans(),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=3)):
        out[key] = draw(optional[key])
    return out


manifest_sets = st.dictionaries(
    st.sampled_from(NAMES),
    st.tuples(specs(), st.sampled_from([{}, {"team": "a"}, {"team": "b"}])),
    min_size=1,
    max_size=5,
)
mutations = st.lists(
    st.tuples(
        st.integers(0, 10),  # which recorded name, modulo their number
        st.sampled_from(["rm", "respec", "fail", "fail", "gone", "stale"]),
    ),
    max_size=6,
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(
        api_key=KEY, accept_any_spec=True, pending_seconds=0.0, processing_seconds=0.0
    )
    with Emulator(config) as emu, pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATAFRAMER_BASE_URL", emu.base_url)
        mp.setenv("DATAFRAMER_API_KEY", KEY)
        mp.delenv("DFR_STATE", raising=False)
        mp.delenv("DFR_DEBUG", raising=False)
        yield emu


def dfr(*args: str) -> tuple[int, str, str]:
    from reconciler.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    assert_clean((out.getvalue(), err.getvalue()))
    return code, out.getvalue(), err.getvalue()


def write_manifests(
    folder: Path, manifests: dict[str, tuple[dict[str, Any], dict[str, str]]]
) -> None:
    for old in folder.glob("*.yaml"):
        old.unlink()
    for name, (spec, labels) in manifests.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(manifest_doc(name, spec, labels)))


def creates(emu: Emulator) -> int:
    return int(emu.stats()["requests"].get("runs.create", 0))


def mutate(emu: Emulator, state: Path, ops: list[tuple[int, str]]) -> None:
    """Change the state (and the API) as people and time do."""
    from reconciler.state.local import LocalBackend

    with LocalBackend(state).lock("test") as store:
        for index, op in ops:
            names = sorted(store.state.runs)
            if not names:
                return
            name = names[index % len(names)]
            record = store.state.runs.get(name)
            if record is None:
                continue
            if op == "rm":
                store.remove(name)
            elif op == "respec":
                spec = dict(record.spec)
                spec["number_of_samples"] = spec.get("number_of_samples", 1) % 20000 + 1
                store.put(record.evolve(spec=spec))
            elif record.run_id is None or record.drift:
                continue
            elif op == "fail":
                emu.force_status(record.run_id, "FAILED", "forced by the property test")
                store.put(
                    record.evolve(status="FAILED", failure_reason="forced by the property test")
                )
            elif op == "gone":
                emu.forget(record.run_id)
                store.put(record.evolve(drift="not_found"))
            elif op == "stale":
                # The API finished it, the state still says PENDING.
                store.put(record.evolve(status="PENDING"))


# No shrinking: an example takes ~0.1 s of real HTTP, and shrinking one can take
# minutes; the failing example (small by construction) is printed as drawn.
@settings(max_examples=25, deadline=None, phases=[Phase.explicit, Phase.generate])
@given(
    before=manifest_sets,
    ops=mutations,
    drop=st.sets(st.sampled_from(NAMES)),
    extra=st.dictionaries(
        st.sampled_from(NAMES),
        st.tuples(specs(), st.sampled_from([{}, {"team": "a"}])),
        max_size=2,
    ),
    prune=st.booleans(),
    replace_some=st.booleans(),
)
def test_apply_then_plan_gives_only_noops(
    emulator: Emulator,
    before: dict[str, tuple[dict[str, Any], dict[str, str]]],
    ops: list[tuple[int, str]],
    drop: set[str],
    extra: dict[str, tuple[dict[str, Any], dict[str, str]]],
    prune: bool,
    replace_some: bool,
) -> None:
    # The new manifests: the earlier ones, some dropped, some added or changed.
    after = {**{n: v for n, v in before.items() if n not in drop}, **extra}
    with tempfile.TemporaryDirectory(prefix="dfr-prop-") as tmp:
        root = Path(tmp)
        folder = root / "manifests"
        folder.mkdir()
        state = str(root / "dfr.state.json")
        common = ["--state", state, str(folder)]

        # The prior state: an earlier apply, then mutations.
        write_manifests(folder, before)
        code, out, err = dfr("apply", "--auto-approve", "--no-wait", *common)
        assert code == 0, out + err
        mutate(emulator, Path(state), ops)

        write_manifests(folder, after)
        code, out, _ = dfr("plan", "--json", *common)
        assert code == 0
        prior = json.loads(out)
        recorded = {c["name"] for c in prior["changes"] if c["prior"] is not None}
        failed = {c["name"] for c in prior["changes"] if c["failed"]}
        replace = sorted(failed)[:1] if replace_some else []

        options = [f"--replace={n}" for n in replace] + (["--prune"] if prune else [])
        code, out, _ = dfr("plan", "--json", *options, *common)
        assert code == 0
        planned = json.loads(out)["summary"]
        for kind in ("create", "replace", "orphan", "failed"):
            event(f"{kind}: {'yes' if planned[kind] else 'no'}")
        posts_before = creates(emulator)
        code, out, err = dfr("apply", "--auto-approve", "--no-wait", *options, *common)
        if prune and not after and recorded:
            # Pruning with no manifest found would cancel everything: refused.
            assert code == 1 and "refusing to prune" in err, out + err
            assert creates(emulator) == posts_before
            assert json.loads(dfr("plan", "--json", *common)[1])["changes"] == prior["changes"]
            return
        # 1 only because some desired run is (still) FAILED.
        assert code == (1 if failed - set(replace) else 0), out + err
        assert creates(emulator) - posts_before == planned["create"] + planned["replace"]

        code, out, _ = dfr("plan", "--json", *common)
        assert code == 0
        changes = json.loads(out)["changes"]
        actions = {c["name"]: c["action"] for c in changes}
        orphans = {n for n, a in actions.items() if a == "orphan"}
        assert {n for n, a in actions.items() if a != "orphan"} == set(after)
        assert all(a in ("noop", "orphan") for a in actions.values()), actions
        assert orphans == (set() if prune else recorded - set(after))
        assert {c["name"] for c in changes if c["failed"]} == failed - set(replace)

        # Applying again sends nothing.
        posts_before = creates(emulator)
        dfr("apply", "--auto-approve", "--no-wait", *common)
        assert creates(emulator) == posts_before
        assert not any(KEY in p.read_text() for p in root.rglob("*") if p.is_file())
