"""Benchmark: `dfr plan` over many manifests that are already in state.

For each size N, writes N manifests (one file each, in a directory) and a state
file whose records match them (through `reconciler.state.statefile`, as
`LocalBackend` reads it), then times `python -m reconciler plan` as a real
subprocess: wall time (median of R runs) and the child's peak RSS (from
`os.wait4`). Scenarios: a no-op plan, and a plan where 10% of the recorded
specs differ (so 10% replaces are rendered).

Targets: a no-op plan of 10,000 manifests under 1.5 s and 200 MB.

    .venv/bin/python bench/bench_plan.py                 # 10,000 (+ 100,000 unless --quick)
    .venv/bin/python bench/bench_plan.py --sizes 1000 --repeat 3

Results: bench/results/bench_plan.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reconciler.schema import manifest_schema  # noqa: E402
from reconciler.state.model import RunRecord, State  # noqa: E402
from reconciler.state.statefile import dumps  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SECONDS = 1.5
TARGET_MB = 200.0
SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


def spec_for(i: int) -> dict[str, Any]:
    all_models = manifest_schema()["$defs"]["current_model"]["enum"]
    spec: dict[str, Any] = {
        "spec_id": SPEC_ID,
        "spec_version": 1 + i % 3,
        "number_of_samples": 100 + i % 900,
    }
    if i % 2:
        spec["generation_model"] = all_models[i % len(all_models)]
    if i % 5 == 0:
        spec["revision_types"] = ["consistency", "coherence_flow"]
        spec["max_revision_cycles"] = 1 + i % 5
    return spec


def manifest_text(name: str, spec: dict[str, Any], team: str) -> str:
    lines = [
        "apiVersion: dataframer.ai/v1",
        "kind: GenerationRun",
        "metadata:",
        f"  name: {name}",
        f"  labels: {{team: {team}}}",
        "spec:",
    ]
    for key, value in spec.items():
        lines.append(f"  {key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def build(workdir: Path, n: int, changed_share: float) -> tuple[Path, Path]:
    """N manifest files and a state matching them, `changed_share` of records differing."""
    manifests = workdir / "manifests"
    manifests.mkdir()
    runs: dict[str, RunRecord] = {}
    stamp = "2026-01-01T00:00:00.000Z"
    every = round(1 / changed_share) if changed_share else 0
    all_models = manifest_schema()["$defs"]["current_model"]["enum"]
    for i in range(n):
        name = f"run-{i:06d}"
        spec = spec_for(i)
        team = f"team-{i % 7}"
        (manifests / f"{name}.yaml").write_text(manifest_text(name, spec, team))
        recorded = dict(spec)
        if every and i % every == 0:
            recorded = {**recorded, "number_of_samples": recorded["number_of_samples"] + 1}
        runs[name] = RunRecord(
            name=name,
            updated_at=stamp,
            run_id=str(uuid.UUID(int=i + 1)),
            status="SUCCEEDED",
            spec=recorded,
            labels={"team": team},
            submitted_at=stamp,
            created_at=stamp,
            completed_at=stamp,
            attempts=1,
            samples_completed=recorded["number_of_samples"],
            samples_failed=0,
            total_cost=1.25,
            # What an SDK-shaped API reports: the sent values and its own choices.
            used={
                "spec_version": recorded.get("spec_version", 3),
                "number_of_samples": recorded["number_of_samples"],
                "generation_model": recorded.get("generation_model", all_models[2]),
                "revision_model": None,
                "tools": [],
            },
        )
    state_path = workdir / "dfr.state.json"
    state = State(format_version=1, serial=n, lineage=str(uuid.uuid4()), runs=runs)
    state_path.write_bytes(dumps(state))
    return manifests, state_path


def run_once(argv: list[str], cwd: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MB, exit code) of one child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DFR_", "DATAFRAMER_"))}
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024.0, proc.returncode  # ru_maxrss: KiB on Linux


def bench(n: int, changed_share: float, repeat: int) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"dfr-bench-plan-{n}-"))
    try:
        t0 = time.perf_counter()
        manifests, state = build(workdir, n, changed_share)
        setup = time.perf_counter() - t0
        argv = [
            sys.executable,
            "-m",
            "reconciler",
            "plan",
            "--detailed-exitcode",
            "--state",
            str(state),
            str(manifests),
        ]
        walls, cpus, rss, codes = [], [], [], set()
        for _ in range(repeat):
            wall, cpu, peak, code = run_once(argv, workdir)
            walls.append(wall)
            cpus.append(cpu)
            rss.append(peak)
            codes.add(code)
        expected = 2 if changed_share else 0
        assert codes == {expected}, f"plan exited {codes}, expected {expected}"
        return {
            "manifests": n,
            "changed_share": changed_share,
            "repeat": repeat,
            "setup_seconds": round(setup, 2),
            "wall_seconds_median": round(statistics.median(walls), 3),
            "wall_seconds_all": [round(w, 3) for w in walls],
            # CPU time (user + sys) of the child: steadier than wall time on a busy machine.
            "cpu_seconds_median": round(statistics.median(cpus), 3),
            "peak_rss_mb_max": round(max(rss), 1),
            "exit_code": expected,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def verdict(row: dict[str, Any]) -> str:
    if row["manifests"] != 10_000 or row["changed_share"]:
        return "-"
    ok = row["wall_seconds_median"] < TARGET_SECONDS and row["peak_rss_mb_max"] < TARGET_MB
    return "meets" if ok else "MISSES"


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| manifests | changed | wall (median) | CPU (median) | runs | peak RSS | 10k target |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        out.append(
            f"| {r['manifests']:,} | {r['changed_share']:.0%} | {r['wall_seconds_median']:.3f} s "
            f"| {r['cpu_seconds_median']:.3f} s | {r['repeat']} | {r['peak_rss_mb_max']:.1f} MB "
            f"| {verdict(r)} |"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5, help="runs per scenario (median)")
    parser.add_argument(
        "--large-repeat", type=int, default=3, help="runs per scenario above 10,000 manifests"
    )
    parser.add_argument("--quick", action="store_true", help="10,000 only")
    args = parser.parse_args()
    sizes = [s for s in args.sizes if not (args.quick and s > 10_000)]
    rows = []
    for n in sizes:
        repeat = args.repeat if n <= 10_000 else args.large_repeat
        for share in (0.0, 0.1):
            row = bench(n, share, repeat)
            rows.append(row)
            print(
                f"{n:>7,} manifests, {share:.0%} changed: {row['wall_seconds_median']:.3f} s, "
                f"{row['cpu_seconds_median']:.3f} s CPU, {row['peak_rss_mb_max']:.1f} MB",
                file=sys.stderr,
            )
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": "plan",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "targets": {"wall_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_MB, "at": 10_000},
        "load_average_at_end": os.getloadavg(),
        "results": rows,
    }
    (RESULTS / "bench_plan.json").write_text(json.dumps(document, indent=2) + "\n")
    print(table(rows))
    return 0 if all(verdict(r) != "MISSES" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
