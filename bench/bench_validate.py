"""Benchmark: `dfr validate` start-up and throughput, side by side with the alternatives.

Generates valid manifests (one per file) in a temporary folder and times, in
the same run, the median of R runs (default 5; the measurements take turns,
round by round, so they share the machine's load alike) of:

- `dfr --version`                                      target < 0.15 s
- `dfr validate FILE` on one file                      target < 0.25 s
- `dfr validate DIR` on 1,000 files, and
  `check-jsonschema --schemafile schemas/generation-run.schema.json FILES...`
                                                       target: dfr <= 0.5x check-jsonschema
- the in-process floor: read each file, `yaml.load(..., Loader=yaml.CSafeLoader)`
  and `validator.is_valid` with one compiled validator (no positions, no
  diagnostics, no interpreter start), at 1,000 and 10,000 files
                                                       target: dfr <= 1.5x the floor at 10,000

    .venv/bin/python bench/bench_validate.py             # 1,000 and 10,000 files
    .venv/bin/python bench/bench_validate.py --quick     # 1,000 only, 3 runs

Each figure also notes its median CPU time (user + system): on a busy machine
wall times move with the load, CPU times hardly do.

Results: bench/results/validate.json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    Figure,
    Timing,
    call_sample,
    interleaved,
    run_sample,
    write_manifests,
    write_report,
)

SCHEMA = ROOT / "schemas" / "generation-run.schema.json"


def dfr_argv() -> list[str]:
    """The console script next to this interpreter, as users run it."""
    console = Path(sys.executable).with_name("dfr")
    return [str(console)] if console.exists() else [sys.executable, "-m", "reconciler"]


def floor(files: list[Path]) -> Callable[[], None]:
    """Parse and check every file with the fastest plain calls, in this process."""
    import yaml

    from reconciler.schema import validator

    v = validator()  # compiled once, as dfr does
    loader = yaml.CSafeLoader

    def check_all() -> None:
        for path in files:
            with open(path, "rb") as handle:
                doc = yaml.load(handle.read(), Loader=loader)
            if not v.is_valid(doc):
                raise AssertionError(f"{path} is not valid")

    return check_all


def check_jsonschema_argv() -> list[str] | None:
    exe = Path(sys.executable).with_name("check-jsonschema")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("check-jsonschema")
    return [found] if found else None


def main() -> int:
    global REPEAT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="1,000 files only, 3 runs")
    args = parser.parse_args()
    REPEAT = 3 if args.quick else max(args.repeat, 1)
    dfr = dfr_argv()
    figures: list[Figure] = []
    extra: dict[str, Any] = {"repeat": REPEAT, "dfr": dfr}

    with tempfile.TemporaryDirectory(prefix="dfr-bench-") as tmp:
        work = Path(tmp)
        small = write_manifests(work / "m1000", 1000)

        def timed(name: str, t: Timing, target: str = "", limit: float | None = None) -> None:
            note = f"cpu {t.cpu:.3f} s"
            if t.peak_rss_mb is not None:
                note += f", peak RSS {t.peak_rss_mb:.0f} MB"
            met = None if limit is None else t.median < limit
            detail = {"runs": t.runs, "cpu": t.cpu, "peak_rss_mb": t.peak_rss_mb}
            figures.append(Figure(name, t.median, target=target, met=met, note=note, detail=detail))

        def ratio(name: str, a: Timing, b: Timing, target: str = "", limit: float = 0) -> None:
            figures.append(
                Figure(
                    name,
                    a.median / b.median,
                    unit="x",
                    target=target,
                    met=None if not limit else a.median / b.median <= limit,
                    note=f"by cpu time: {a.cpu / b.cpu:.2f}x",
                )
            )

        cjs = check_jsonschema_argv()
        round_1k = {
            "version": run_sample([*dfr, "--version"]),
            "one": run_sample([*dfr, "validate", str(small[0])]),
            "dfr_1k": run_sample([*dfr, "validate", str(work / "m1000")]),
            "floor_1k": call_sample(floor(small)),
        }
        if cjs is not None:
            argv = [*cjs, "--schemafile", str(SCHEMA), *map(str, small)]
            round_1k["cjs_1k"] = run_sample(argv)
        t = interleaved(round_1k, repeat=REPEAT)

        timed("dfr --version", t["version"], "< 0.15 s", 0.15)
        timed("dfr validate (1 file)", t["one"], "< 0.25 s", 0.25)
        timed("dfr validate DIR (1,000 files)", t["dfr_1k"])
        if cjs is not None:
            timed("check-jsonschema FILES (1,000 files)", t["cjs_1k"])
            ratio("dfr / check-jsonschema (1,000 files)", t["dfr_1k"], t["cjs_1k"], "<= 0.50x", 0.5)
        else:
            figures.append(Figure("check-jsonschema", 0.0, note="not installed; skipped"))
        timed("floor: CSafeLoader + is_valid (1,000 files)", t["floor_1k"])
        ratio("dfr / floor (1,000 files)", t["dfr_1k"], t["floor_1k"])

        if not args.quick:
            big = write_manifests(work / "m10000", 10_000)
            t = interleaved(
                {
                    "dfr_10k": run_sample([*dfr, "validate", str(work / "m10000")]),
                    "floor_10k": call_sample(floor(big)),
                },
                repeat=REPEAT,
            )
            timed("dfr validate DIR (10,000 files)", t["dfr_10k"])
            timed("floor: CSafeLoader + is_valid (10,000 files)", t["floor_10k"])
            ratio("dfr / floor (10,000 files)", t["dfr_10k"], t["floor_10k"], "<= 1.50x", 1.5)

        version = subprocess.run(
            [*dfr, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        extra["version"] = version

    write_report("validate", figures, extra)
    return 0 if all(f.met for f in figures if f.met is not None) else 1


REPEAT = 5

if __name__ == "__main__":
    sys.exit(main())
