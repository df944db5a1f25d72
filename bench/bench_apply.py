"""Benchmark: `dfr apply --auto-approve --parallelism 16` of 1,000 runs.

The emulator runs in its own process (`python -m reconciler.emulator`) with
50 ms of latency on every request and runs that finish 2 s after creation
(1 s PENDING + 1 s PROCESSING). `dfr apply` runs as a real subprocess with its
default polling. Reported:

- wall time against the ideal `N * latency / parallelism + lifetime`
  (1000 * 0.05 / 16 + 2 = 5.125 s): target ratio at most 1.3;
- API requests per run until every run is final, from `/_emulator/stats`:
  target under 3.

    .venv/bin/python bench/bench_apply.py                 # 1,000 runs, 3 repeats
    .venv/bin/python bench/bench_apply.py --runs 200 --repeat 1

Results: bench/results/bench_apply.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
KEY = "bench-apply-key"
SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
TARGET_RATIO = 1.3
TARGET_REQUESTS_PER_RUN = 3.0


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("DFR_", "DATAFRAMER_"))}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + out.get("PYTHONPATH", "")
    return out


@contextmanager
def emulator(latency: float, pending: float, processing: float) -> Iterator[str]:
    argv = [
        sys.executable,
        "-m",
        "reconciler.emulator",
        "--print-url",
        "--port",
        "0",
        "--api-key",
        KEY,
        "--latency",
        str(latency),
        "--pending-seconds",
        str(pending),
        "--processing-seconds",
        str(processing),
    ]
    proc = subprocess.Popen(argv, env=env(), stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"the emulator did not start (said {url!r})")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def admin(url: str, action: str) -> Any:
    with urllib.request.urlopen(f"{url}/_emulator/{action}", timeout=30) as answer:
        return json.loads(answer.read())


def write_manifests(folder: Path, n: int, per_file: int = 100) -> None:
    folder.mkdir()
    docs: list[str] = []
    for i in range(n):
        docs.append(
            "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
            f"metadata: {{name: run-{i:05d}}}\n"
            f"spec: {{spec_id: {SPEC_ID}, number_of_samples: {10 + i % 90}}}\n"
        )
    for start in range(0, n, per_file):
        chunk = docs[start : start + per_file]
        (folder / f"runs-{start // per_file:04d}.yaml").write_text("---\n".join(chunk))


def bench_once(args: argparse.Namespace) -> dict[str, Any]:
    lifetime = args.pending + args.processing
    with tempfile.TemporaryDirectory(prefix="dfr-bench-apply-") as tmp:
        root = Path(tmp)
        write_manifests(root / "manifests", args.runs)
        with emulator(args.latency, args.pending, args.processing) as url:
            argv = [
                sys.executable,
                "-m",
                "reconciler",
                "apply",
                "--auto-approve",
                "--parallelism",
                str(args.parallelism),
                "--state",
                str(root / "dfr.state.json"),
                *(["--poll-interval", args.poll_interval] if args.poll_interval else []),
                str(root / "manifests"),
            ]
            child_env = {**env(), "DATAFRAMER_BASE_URL": url, "DATAFRAMER_API_KEY": KEY}
            start = time.perf_counter()
            done = subprocess.run(argv, env=child_env, cwd=root, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"apply exited {done.returncode}:\n{done.stderr[-3000:]}")
            stats = admin(url, "stats")
            runs = admin(url, "runs")
    final = sum(1 for r in runs if r["status"] == "SUCCEEDED")
    assert stats["runs_created"] == args.runs == final, (stats["runs_created"], final)
    ideal = args.runs * args.latency / args.parallelism + lifetime
    requests = stats["requests_total"]
    return {
        "wall_seconds": round(wall, 3),
        "ideal_seconds": round(ideal, 3),
        "ratio": round(wall / ideal, 3),
        "requests_total": requests,
        "requests": stats["requests"],
        "requests_per_run": round(requests / args.runs, 3),
        "responses": stats["responses"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--pending", type=float, default=1.0)
    parser.add_argument("--processing", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the whole scenario")
    parser.add_argument(
        "--poll-interval", default=None, help="pass --poll-interval to apply (default: dfr's)"
    )
    args = parser.parse_args()
    rows = []
    for i in range(args.repeat):
        row = bench_once(args)
        rows.append(row)
        print(
            f"#{i + 1}: {row['wall_seconds']:.2f} s (ratio {row['ratio']:.2f}), "
            f"{row['requests_per_run']:.2f} requests/run",
            file=sys.stderr,
        )
    wall = statistics.median(r["wall_seconds"] for r in rows)
    ideal = rows[0]["ideal_seconds"]
    per_run = statistics.median(r["requests_per_run"] for r in rows)
    summary = {
        "wall_seconds_median": round(wall, 3),
        "ideal_seconds": ideal,
        "ratio": round(wall / ideal, 3),
        "requests_per_run": per_run,
        "meets_ratio": wall / ideal <= TARGET_RATIO,
        "meets_requests": per_run < TARGET_REQUESTS_PER_RUN,
    }
    RESULTS.mkdir(exist_ok=True)
    document = {
        "benchmark": "apply",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "scenario": {
            "runs": args.runs,
            "parallelism": args.parallelism,
            "latency_seconds": args.latency,
            "run_lifetime_seconds": args.pending + args.processing,
            "poll_interval": args.poll_interval or "default",
        },
        "targets": {"ratio_max": TARGET_RATIO, "requests_per_run_below": TARGET_REQUESTS_PER_RUN},
        "summary": summary,
        "results": rows,
    }
    (RESULTS / "bench_apply.json").write_text(json.dumps(document, indent=2) + "\n")
    ok = summary["meets_ratio"] and summary["meets_requests"]
    print(
        "| runs | parallelism | wall (median) | ideal | ratio (target <= 1.3) "
        "| requests/run (target < 3) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    print(
        f"| {args.runs:,} | {args.parallelism} | {wall:.2f} s | {ideal:.3f} s "
        f"| {summary['ratio']:.2f} {'meets' if summary['meets_ratio'] else 'MISSES'} "
        f"| {per_run:.2f} {'meets' if summary['meets_requests'] else 'MISSES'} |"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
