"""Shared helpers for the benchmarks: timing, manifest generation, reports.

    from bench.common import Figure, median_run, median_call, write_report

- `median_run(argv, repeat=5)`: wall time of a real subprocess (median of
  `repeat` runs after `warmup` unrecorded ones), with the child's peak RSS.
- `median_call(fn, repeat=5)`: the same for an in-process callable.
- `interleaved({name: run_sample(argv) or call_sample(fn)}, repeat=5)`: several
  measurements taking turns, round by round, so that their ratios are fair
  on a machine whose load changes.
- `write_manifests(folder, n)`: n valid manifest files, one per file.
- `Figure` and `write_report(name, figures, extra)`: bench/results/NAME.json
  and a markdown table (figure, median, target, met?) on stdout.

Benchmarks run as scripts (`.venv/bin/python bench/bench_x.py`): this module
puts the repository on sys.path so they import the working tree's `reconciler`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall-clock seconds (median and every run) and CPU seconds (median).

    CPU time (user + system of the child, or of this process for a call)
    hardly moves when other work shares the machine; wall time does.
    """

    median: float
    runs: list[float]
    cpu: float
    peak_rss_mb: float | None = None

    @property
    def spread(self) -> str:
        return f"{min(self.runs):.3f}-{max(self.runs):.3f}"


def _run_once(
    argv: Sequence[str], cwd: Path | None, env: dict[str, str] | None
) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit status) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss / 1024, proc.returncode


def median_run(
    argv: Sequence[str],
    *,
    repeat: int = 5,
    warmup: int = 1,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    expect_exit: int | None = 0,
) -> Timing:
    """Median wall time of running `argv` (stdout and stderr discarded)."""
    for _ in range(warmup):
        _run_once(argv, cwd, env)
    runs, cpus, rss = [], [], []
    for _ in range(repeat):
        elapsed, cpu, peak, code = _run_once(argv, cwd, env)
        if expect_exit is not None and code != expect_exit:
            raise RuntimeError(f"{' '.join(argv[:4])}... exited {code}, expected {expect_exit}")
        runs.append(elapsed)
        cpus.append(cpu)
        rss.append(peak)
    return Timing(statistics.median(runs), runs, statistics.median(cpus), max(rss))


def median_call(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> Timing:
    """Median wall time of calling `fn()` in this process."""
    for _ in range(warmup):
        fn()
    runs, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return Timing(statistics.median(runs), runs, statistics.median(cpus))


Sample = tuple[float, float, float | None]  # wall seconds, CPU seconds, peak RSS MB


def run_sample(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    expect_exit: int | None = 0,
) -> Callable[[], Sample]:
    """One subprocess run per call, for `interleaved`."""

    def sample() -> Sample:
        elapsed, cpu, peak, code = _run_once(argv, cwd, env)
        if expect_exit is not None and code != expect_exit:
            raise RuntimeError(f"{' '.join(argv[:4])}... exited {code}, expected {expect_exit}")
        return elapsed, cpu, peak

    return sample


def call_sample(fn: Callable[[], Any]) -> Callable[[], Sample]:
    """One in-process call per call, for `interleaved`."""

    def sample() -> Sample:
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - start, time.process_time() - cpu, None

    return sample


def interleaved(
    samples: dict[str, Callable[[], Sample]], *, repeat: int = 5, warmup: int = 1
) -> dict[str, Timing]:
    """Medians of `repeat` rounds, each round taking one sample of every measurement.

    Taking turns puts the measurements under the same load, so their ratios
    stay fair when other work comes and goes on the machine.
    """
    for _ in range(warmup):
        for sample in samples.values():
            sample()
    taken: dict[str, list[Sample]] = {name: [] for name in samples}
    for _ in range(repeat):
        for name, sample in samples.items():
            taken[name].append(sample())
    out = {}
    for name, runs in taken.items():
        peaks = [r[2] for r in runs if r[2] is not None]
        out[name] = Timing(
            statistics.median(r[0] for r in runs),
            [r[0] for r in runs],
            statistics.median(r[1] for r in runs),
            max(peaks) if peaks else None,
        )
    return out


def manifest_text(i: int, name: str | None = None) -> str:
    """A valid manifest, varied a little by `i` (models, revisions, labels)."""
    from reconciler.schema import models

    all_models = models()
    lines = [
        "apiVersion: dataframer.ai/v1",
        "kind: GenerationRun",
        "metadata:",
        f"  name: {name or f'run-{i:06d}'}",
        f"  labels: {{team: team-{i % 7}, batch: b{i % 13}}}",
        "spec:",
        f"  spec_id: {SPEC_ID}",
        f"  spec_version: {1 + i % 3}",
        f"  number_of_samples: {100 + i % 900}",
        f"  generation_model: {all_models[i % len(all_models)]}",
    ]
    if i % 5 == 0:
        lines += ["  enable_revisions: true", f"  max_revision_cycles: {1 + i % 5}"]
    return "\n".join(lines) + "\n"


def write_manifests(folder: Path, n: int) -> list[Path]:
    """n valid manifests, one per file, in `folder`; returns the files in order."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f"run-{i:06d}.yaml"
        path.write_text(manifest_text(i), encoding="utf-8")
        files.append(path)
    return files


@dataclass
class Figure:
    """One row of a report: a measured figure against its target."""

    name: str
    value: float
    unit: str = "s"
    target: str = ""
    met: bool | None = None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        digits = 3 if self.unit == "s" else 2
        value = f"{self.value:.{digits}f}{' ' if self.unit == 's' else ''}{self.unit}"
        met = "-" if self.met is None else ("yes" if self.met else "**no**")
        return [self.name, value, self.target or "-", met, self.note]


def markdown_table(figures: Sequence[Figure]) -> str:
    rows = [["figure", "median", "target", "met?", "note"], ["---"] * 5]
    rows += [f.cells() for f in figures]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def environment() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on this platform
        load = None
    return {
        "load_average_1min": load,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_report(name: str, figures: Sequence[Figure], extra: dict[str, Any] | None = None) -> Path:
    """bench/results/NAME.json, and the markdown table on stdout."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": environment(),
        "figures": [asdict(f) for f in figures],
        "all_targets_met": all(f.met for f in figures if f.met is not None),
        **(extra or {}),
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(figures))
    print(f"\nwritten: {path.relative_to(ROOT)}")
    return path
