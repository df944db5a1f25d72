"""A test's folder: manifests, state and dfr.yaml, and dfr run there as a process.

`Workspace` is the one folder every suite uses. By default its manifests are in
`manifests/` and its state is `dfr.state.json`, which the `dfr` runner passes as
`--state`. With `repo=True` it is a project in a git repository, as users have
one: a `.git` folder (so the search for dfr.yaml stops there), manifests in
`runs/`, and the state wherever dfr.yaml (or the default) puts it.

The manifest builders: `spec()` and `manifest_doc()` make documents to dump as
YAML; `manifest_text()` writes one in a fixed layout, for tests that assert line
and column numbers.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reconciler.state.model import State
from support import runner
from support.emulators import KEY, SUPPORT
from support.runner import Result, Runner

#: The process harness polls slowly: its emulator's runs take about a second.
PROCESS_POLL = "0.2s"
#: Variables of the developer's or CI's environment that would change what dfr does.
_FOREIGN = ("NO_COLOR", "FORCE_COLOR", "GITHUB_ACTIONS", "GITLAB_CI")


def spec(**fields: Any) -> dict[str, Any]:
    """A valid spec: the support-tickets seed spec, 10 samples, plus `fields`."""
    return {"spec_id": SUPPORT, "number_of_samples": 10, **fields}


def manifest_doc(
    name: str, spec_: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "dataframer.ai/v1",
        "kind": "GenerationRun",
        "metadata": metadata,
        "spec": spec_,
    }


def manifest_text(
    name: str,
    extra: str = "",
    *,
    spec_id: str = SUPPORT,
    samples: int | str = 10,
    version: int | None = 1,
    labels: dict[str, str] | None = None,
) -> str:
    """One manifest document as text, in a fixed layout (line numbers are stable):

    1 apiVersion, 2 kind, 3 metadata:, 4 name, [5 labels:, one line per label],
    then spec:, spec_id, [spec_version], number_of_samples, then `extra` lines.
    """
    out = ["apiVersion: dataframer.ai/v1", "kind: GenerationRun", "metadata:", f"  name: {name}"]
    if labels:
        out.append("  labels:")
        out += [f"    {k}: {v}" for k, v in labels.items()]
    out += ["spec:", f"  spec_id: {spec_id}"]
    if version is not None:
        out.append(f"  spec_version: {version}")
    out.append(f"  number_of_samples: {samples}")
    return "\n".join(out) + "\n" + extra


def _foreign(name: str) -> bool:
    if name == "DFR_CACHE_DIR":  # the test session's cache, never the user's
        return False
    return name.startswith(("DFR_", "DATAFRAMER_")) or "PROXY" in name.upper() or name in _FOREIGN


class Workspace:
    """Manifests in `manifests/` (`runs/` in a repo), state in `dfr.state.json`."""

    def __init__(self, root: Path, api_url: str = "", *, repo: bool = False) -> None:
        self.root = root
        self.api_url = api_url
        self.repo = repo
        root.mkdir(parents=True, exist_ok=True)
        if repo:
            (root / ".git").mkdir(exist_ok=True)
        self.manifests = root / ("runs" if repo else "manifests")
        self.manifests.mkdir(exist_ok=True)
        self.state = root / "dfr.state.json"
        #: What every dfr run here printed (checked by `check_converged`).
        self.outputs: list[str] = []
        #: name -> number_of_samples of the manifests `write_manifests` wrote.
        self.samples: dict[str, int] = {}

    # -- files ------------------------------------------------------------------------

    def write(self, name: str, labels: dict[str, str] | None = None, **fields: Any) -> Path:
        """Write manifest `name` (one file per name) with `spec(**fields)`."""
        return self.write_spec(name, spec(**fields), labels)

    def write_spec(
        self, name: str, spec_: dict[str, Any], labels: dict[str, str] | None = None
    ) -> Path:
        path = self.manifests / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest_doc(name, spec_, labels), sort_keys=False))
        return path

    def write_text(self, name: str, text: str | None = None, **layout: Any) -> Path:
        """NAME.yaml among the manifests with `text`, or `manifest_text(NAME, **layout)`."""
        path = self.manifests / f"{name}.yaml"
        path.write_text(text if text is not None else manifest_text(name, **layout), "utf-8")
        return path

    def write_many(self, docs: list[dict[str, Any]], filename: str = "many.yaml") -> Path:
        path = self.manifests / filename
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    def write_manifests(self, count: int, *, base: int = 100, identical: bool = False) -> None:
        """`count` manifests run-1..run-N; distinct sample counts unless `identical`."""
        for i in range(1, count + 1):
            name = f"run-{i}"
            self.samples[name] = base if identical else base + i
            self.write_text(name, samples=self.samples[name])

    def remove(self, name: str) -> None:
        (self.manifests / f"{name}.yaml").unlink()

    def config(self, text: str, where: Path | None = None) -> Path:
        """dfr.yaml with `text` (dedented), here or in the folder `where`."""
        return self.file("dfr.yaml", text, where)

    def file(self, relative: str, text: str, where: Path | None = None) -> Path:
        path = (where or self.root) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    # -- state ------------------------------------------------------------------------

    def read_state(self) -> State:
        from reconciler.state.local import LocalBackend

        return LocalBackend(self.state).read()

    def state_doc(self) -> dict[str, Any]:
        """The state as `dfr state show --json` would see it: read via the backend."""
        from reconciler.state.statefile import state_to_dict

        return state_to_dict(self.read_state())

    def record(self, name: str) -> dict[str, Any]:
        runs: dict[str, Any] = self.state_doc()["runs"]
        return dict(runs[name])

    def run_ids(self) -> dict[str, str | None]:
        return {name: r.get("run_id") for name, r in self.state_doc()["runs"].items()}

    # -- dfr as a process -------------------------------------------------------------

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a dfr process here: this API and key, this state, and
        nothing of the caller's DFR_, DATAFRAMER_, proxy, colour or CI variables."""
        env = {k: v for k, v in os.environ.items() if not _foreign(k)}
        env.update(
            DATAFRAMER_API_KEY=KEY,
            DATAFRAMER_BASE_URL=self.api_url,
            # The emulator never finishes a POST late, so the real-world wait
            # before resubmitting a lost one (recovery grace) only slows tests.
            DFR_RECOVERY_GRACE="0",
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(runner.ROOT),
        )
        if not self.repo:
            env["DFR_STATE"] = str(self.state)
        env.update(extra or {})
        return env

    def apply_args(self, *extra: str) -> list[str]:
        """`apply --auto-approve`, polling every PROCESS_POLL, `extra`, on this folder."""
        return [
            "apply",
            "--auto-approve",
            "--poll-interval",
            PROCESS_POLL,
            *extra,
            str(self.manifests),
        ]

    def start(
        self, *args: str, env: dict[str, str] | None = None, crash_at: str | None = None
    ) -> subprocess.Popen[str]:
        """`dfr ARGS` as a process here; `crash_at` (POINT:N[:SIGNAL]) arms a crash point."""
        return runner.start(*args, env=self.env(env), cwd=self.root, crash_at=crash_at)

    def finish(
        self, proc: subprocess.Popen[str], timeout: float = runner.PROCESS_TIMEOUT
    ) -> Result:
        result = runner.finish(proc, timeout)
        self.outputs.append(result.text)
        return result

    def dfr(
        self, *args: str, env: dict[str, str] | None = None, crash_at: str | None = None
    ) -> Result:
        """Run `dfr ARGS` as a process to its end (see `start`)."""
        return self.finish(self.start(*args, env=env, crash_at=crash_at))

    def apply_until_ok(
        self, attempts: int = 3, *extra: str, run: Runner | None = None
    ) -> list[Result]:
        """Apply without faults until exit 0 (bounded); every attempt's result.

        `run` runs dfr (the `dfr` fixture, say); by default a process here.
        """
        results = []
        for _ in range(attempts):
            result = (run or self.dfr)(*self.apply_args(*extra))
            results.append(result)
            if result.code == 0:
                return results
        raise AssertionError("apply did not converge:\n" + "\n----\n".join(r.text for r in results))
