"""Pull throughput against the emulator on loopback: `dfr pull` vs a plain `curl` of the same files.

    .venv/bin/python bench/bench_pull.py [--runs 9] [--samples 20000] [--repeat 5]

An emulator process (`python -m dfr_emulator`) makes `--runs` runs of `--samples`
samples each (about 0.5 KB per sample, in five files per run: 9 runs are 45 files,
91 MB, the most the emulator keeps generated); `dfr apply` waits for them. Then,
in turns, `--repeat` times each:

- `dfr pull` into an empty `data/` folder (everything downloaded, verified with
  sha256, swapped in, recorded), as a child process;
- `curl --parallel` of the same files from fresh presigned URLs (the URLs are
  fetched before the clock starts), `--parallel-max` equal to dfr's parallelism;
- dfr's file host client alone, in this process: the same URLs fetched, hashed
  and written, as many at once; what any verified pull with this HTTP stack
  costs at the least, so curl / it is the floor of the ratio on this machine.

An untimed curl pass first makes the emulator generate every file's bytes (it
does on first download). Both read from the same file host, so the ratio measures dfr's own cost
(hashing, the sync before the swap, staging, the API calls for the links). dfr's
start-up is the median of pulls with nothing to download (digest cache warm:
they re-hash nothing), and its transfer rate is the data over the time beyond
that. Target: that rate at least 1/1.3 of curl's. The CPU seconds of both
children are recorded beside the wall times. Written to bench/results/pull.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, SPEC_ID, Figure, write_report

KEY = "bench-key-4f1c9e2a7b"
PARALLELISM = 8
TARGET_RATIO = 1.3


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "dfr_emulator", "--print-url", "--port", "0"]
    argv += ["--api-key", KEY, "--pending-seconds", "0.05", "--processing-seconds", "0.1"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


CPU: dict[str, list[float]] = {"dfr": [], "curl": []}


def timed(side: str, argv: list[str], **kwargs: object) -> float:
    """Wall seconds of one child; its CPU seconds (user + system) go to CPU[side]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[side].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def dfr(env: dict[str, str], cwd: Path, *args: str) -> float:
    return timed("dfr", [sys.executable, "-m", "reconciler", *args], env=env, cwd=cwd)


def write_manifests(folder: Path, runs: int, samples: int) -> None:
    for i in range(runs):
        (folder / f"run-{i}.yaml").write_text(
            "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
            f"metadata:\n  name: run-{i}\nspec:\n  spec_id: {SPEC_ID}\n  spec_version: 1\n"
            f"  number_of_samples: {samples}\noutputs:\n  path: data/run-{i}\n"
        )


def links(url: str, workdir: Path, folder: str) -> list[tuple[str, str, int]]:
    """(file URL, target path below `folder`, size) of every file of every run in state."""
    from reconciler.api import DataframerClient
    from reconciler.state.local import LocalBackend

    state = LocalBackend(workdir / "dfr.state.json").read()
    out = []
    with DataframerClient(url, KEY) as client:
        for record in state.runs.values():
            assert record.run_id is not None
            for f in client.get_run(record.run_id).generated_files:
                link = client.file_download_url(record.run_id, str(f.id))
                target = workdir / folder / record.name / str(f.path)
                out.append((str(link.download_url), str(target), f.size_bytes or 0))
    return out


def curl(files: list[tuple[str, str, int]]) -> float:
    argv = ["curl", "-s", "-S", "-f", "--parallel", "--parallel-max", str(PARALLELISM)]
    argv += ["--create-dirs", "--no-progress-meter"]
    for url, target, _ in files:
        argv += ["-o", target, url]
    return timed("curl", argv)


def client_alone(files: list[tuple[str, str, int]]) -> float:
    """dfr's file host client without the puller: each file fetched, hashed (sha256)
    and written, PARALLELISM at once, in this process: the least a verified pull
    with this HTTP stack costs (no API calls, staging, sync, swap or state)."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from reconciler.api.files import FileHost

    def one(host: FileHost, url: str, target: str, size: int) -> None:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(target, "wb") as handle:

            def sink(chunk: bytes) -> None:
                handle.write(chunk)
                digest.update(chunk)

            host.fetch(url, sink, name=target, expected_size=size)

    with (
        FileHost(timeout=httpx.Timeout(60.0), pool_size=PARALLELISM) as host,
        ThreadPoolExecutor(PARALLELISM) as pool,
    ):
        started = time.perf_counter()
        list(pool.map(lambda f: one(host, *f), files))
        return time.perf_counter() - started


def report(runs: int, size: int, times: dict[str, list[float]], fixed: list[float]) -> None:
    mb = size / 1e6
    rate = {side: mb / statistics.median(seconds) for side, seconds in times.items()}
    beyond = max(statistics.median(times["dfr"]) - statistics.median(fixed), 1e-6)
    transfer = mb / beyond
    ratio = rate["curl"] / transfer
    figures = [
        Figure(f"dfr pull, {runs} runs, {mb:.0f} MB, end to end", rate["dfr"], "MB/s"),
        Figure("dfr pull with nothing to download (start-up)", statistics.median(fixed)),
        Figure("dfr pull, beyond its start-up", transfer, "MB/s"),
        Figure("curl --parallel, same files", rate["curl"], "MB/s"),
        Figure(
            "curl MB/s / dfr MB/s beyond start-up",
            ratio,
            "x",
            target=f"<= {TARGET_RATIO}",
            met=ratio <= TARGET_RATIO,
        ),
        Figure("dfr's file host client alone (fetch, sha256, write)", rate["client"], "MB/s"),
        Figure(
            "curl MB/s / the client alone's (this machine's floor)",
            rate["curl"] / rate["client"],
            "x",
        ),
    ]
    extra: dict[str, Any] = {f"{side}_seconds": seconds for side, seconds in times.items()}
    extra["fixed_seconds"] = fixed
    extra["cpu_seconds"] = CPU
    write_report("pull", figures, {**extra, "bytes": size})


def rounds(
    repeat: int, env: dict[str, str], workdir: Path, url: str
) -> tuple[dict[str, list[float]], int]:
    """`repeat` rounds of dfr pull, curl and the client alone, in turns; seconds, bytes."""
    times: dict[str, list[float]] = {"dfr": [], "curl": [], "client": []}
    sides, size = list(times), 0
    pull = ["pull", "--no-progress", "--parallelism", str(PARALLELISM), "--path", "manifests"]
    for round_ in range(repeat):
        for side in sides[round_ % 3 :] + sides[: round_ % 3]:
            if side == "dfr":
                shutil.rmtree(workdir / "data", ignore_errors=True)
                times["dfr"].append(dfr(env, workdir, *pull))
                continue
            shutil.rmtree(workdir / side, ignore_errors=True)
            files = links(url, workdir, side)
            size = sum(s for _, _, s in files)
            times[side].append(curl(files) if side == "curl" else client_alone(files))
    return times, size


def main() -> int:
    parser = argparse.ArgumentParser()
    # The emulator keeps the bytes of 48 files: 9 runs (45 files) stay generated, so
    # both sides measure transfers, not the emulator making files again.
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    emulator, url = start_emulator()
    workdir = Path(tempfile.mkdtemp(prefix="dfr-bench-pull-"))
    try:
        env = {**os.environ, "DATAFRAMER_API_KEY": KEY, "DATAFRAMER_BASE_URL": url}
        env["PYTHONPATH"] = str(ROOT)
        env.pop("DFR_STATE", None)
        (workdir / "manifests").mkdir()
        write_manifests(workdir / "manifests", args.runs, args.samples)
        dfr(env, workdir, "apply", "--auto-approve", "--poll-interval", "0.2s", "manifests")
        # The emulator makes a file's bytes on its first download: one untimed pass
        # first, so that both measure the transfer, not the emulator's generation.
        curl(links(url, workdir, "curl"))
        CPU["dfr"].clear()
        CPU["curl"].clear()
        times, size = rounds(args.repeat, env, workdir, url)
        # What a pull costs with nothing to download (start-up, manifests, state, lock):
        # dfr's transfer rate is the data over the time beyond that. Files written in
        # the last 2 s are not remembered by the digest cache: wait, and fill it once.
        time.sleep(2.1)
        pull = ["pull", "--no-progress", "--parallelism", str(PARALLELISM), "--path", "manifests"]
        pulls = len(CPU["dfr"])
        dfr(env, workdir, *pull)
        fixed = [dfr(env, workdir, *pull) for _ in range(args.repeat)]
        CPU["dfr_nothing_to_download"] = CPU["dfr"][pulls + 1 :]
        del CPU["dfr"][pulls:]
        report(args.runs, size, times, fixed)
        return 0
    finally:
        emulator.kill()
        emulator.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
