"""A seeded, bounded mutation campaign against every reader of user files -> RELIABILITY.md.

Each case is one mutated file (a COCO keypoint file, an MPII file, detections, results, box
files, images, videos, checkpoints, exported models, YAML configs: tests/fuzzing.py has the
mutators and the contract) fed through hrpose's readers, training datasets, crops and metrics.
Cases run in worker processes, so a segfault or a hang is caught and counted rather than
ending the campaign:

    outcome    meaning
    error      a clean one-line HrposeError (the contract)
    accepted   valid data came back (the contract)
    wrong      valid-looking data that breaks the promise (NaN, duplicates...): a silent
               wrong answer
    traceback  any other exception
    crash      the worker died (a signal such as SIGSEGV, or the memory limit)
    hang       no answer within --timeout seconds

    python benchmarks/fuzz_campaign.py [--cases 11000] [--seed 0] [--workers 2] [--no-report]
    python benchmarks/fuzz_campaign.py --replay annotations:1234     # one case, in-process
    python benchmarks/fuzz_campaign.py --crash-sweep                # kill training 13 ways
    python benchmarks/fuzz_campaign.py --service --cases 2000       # hostile service clients
    python benchmarks/fuzz_campaign.py --batch 10                   # kill batch jobs, rerun
    python benchmarks/fuzz_campaign.py --videos 200                 # damaged videos

The crash sweep kills a short training run (tests/crashing.py) with SIGKILL or SIGINT at 13
points - mid-epoch, inside an optimiser step, half-way through writing latest.pt, inside an
evaluation - checks that every checkpoint left on disk loads, resumes it, and compares the final
weights with an uninterrupted run's, bit for bit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import select
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Shares of the cases by target (about the sizes of the first, manual campaign).
SHARES = {"annotations": 0.26, "mpii": 0.06, "detections": 0.06, "results": 0.06,
          "box_files": 0.05, "images": 0.19, "videos": 0.03, "checkpoints": 0.15,
          "exported": 0.06, "configs": 0.08}
MEMORY_LIMIT = 6 << 30          # address space of a worker: a blow-up is a crash, not an OOM


def run_case(targets: dict, contexts: dict, name: str, seed: int, workdir: Path) -> dict:
    from fuzzing import ContractBroken

    target = targets[name]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if name not in contexts:
        base = workdir / f"base-{name}"
        base.mkdir(exist_ok=True)
        contexts[name] = target.setup(base)
    case_dir = workdir / "case"
    case_dir.mkdir(exist_ok=True)
    try:
        outcome, detail = target.case(contexts[name], case_dir, random.Random(seed)), ""
    except ContractBroken as e:
        outcome, detail = "wrong", str(e)
    except Exception as e:
        frame = traceback.extract_tb(e.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        outcome, detail = "traceback", f"{type(e).__name__} at {where}: {str(e)[:160]}"
    # The worker's peak only grows: a case is charged the peak it raised (0 if it did not).
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"outcome": outcome, "detail": detail, "rss": after if after > before else 0}


def worker() -> None:
    """Reads `target seed` lines, answers one JSON line per case."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    from fuzzing import TARGETS

    # Answers go through a private copy of stdout; anything the libraries print (C code
    # included) goes to stderr, so it never garbles an answer.
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    contexts: dict = {}
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # after the imports
    with tempfile.TemporaryDirectory() as tmp:
        for line in sys.stdin:
            name, seed = line.split()
            result = {**run_case(TARGETS, contexts, name, int(seed), Path(tmp)), "base": base}
            answers.write(json.dumps(result) + "\n")
            answers.flush()


class Worker:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "tests"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def run(self, name: str, seed: int, timeout: float) -> dict:
        self.proc.stdin.write(f"{name} {seed}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            return {"outcome": "hang", "detail": f"no answer in {timeout:g} s", "rss": 0}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return {"outcome": "crash", "detail": f"worker exit status {code}", "rss": 0}
        return json.loads(line)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive:
            self.proc.stdin.close()
            self.proc.wait()


def campaign(cases: int, seed: int, workers: int, timeout: float) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    plan = [(name, seed * 10_000_000 + i) for name, share in SHARES.items()
            for i in range(round(cases * share))]
    random.Random(seed).shuffle(plan)          # mix targets so each worker sees all kinds
    chunks = [plan[i::workers] for i in range(workers)]
    tally: dict = collections.defaultdict(collections.Counter)
    peak: dict = collections.defaultdict(int)
    examples: dict = collections.defaultdict(list)
    biggest: list = []
    footprint = [0]
    bar = tqdm(total=len(plan), unit="case", desc="fuzz")

    def drive(chunk: list) -> None:
        w = Worker()
        for name, case_seed in chunk:
            if not w.alive:
                w = Worker()
            result = w.run(name, case_seed, timeout)
            tally[name][result["outcome"]] += 1
            peak[name] = max(peak[name], result["rss"])
            biggest.append((result["rss"], f"{name}:{case_seed}"))
            footprint[0] = max(footprint[0], result.get("base", 0))
            if result["outcome"] not in ("error", "accepted") and len(examples[name]) < 8:
                examples[name].append(f"{name}:{case_seed} {result['outcome']}: "
                                      f"{result['detail']}")
            bar.update()
        w.close()

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(drive, chunks))
    bar.close()
    return {"tally": tally, "peak": peak, "examples": examples,
            "seconds": time.perf_counter() - start, "cases": len(plan),
            "biggest": sorted(biggest, reverse=True)[:3], "footprint": footprint[0]}


OUTCOMES = ("error", "accepted", "wrong", "traceback", "crash", "hang")


def table(result: dict) -> str:
    rows = ["| target | cases | " + " | ".join(OUTCOMES) + " | peak worker RSS (MiB) |",
            "|---" * (len(OUTCOMES) + 3) + "|"]
    total: collections.Counter = collections.Counter()
    for name in SHARES:
        counts = result["tally"][name]
        total.update(counts)
        peak = f"{result['peak'][name] / 2**20:.0f}" if result["peak"][name] else "-"
        rows.append(f"| {name} | {sum(counts.values())} | "
                    + " | ".join(str(counts[o]) for o in OUTCOMES) + f" | {peak} |")
    rows.append(f"| **all** | {sum(total.values())} | "
                + " | ".join(str(total[o]) for o in OUTCOMES) + " | |")
    return "\n".join(rows)


def write_report(result: dict, args: argparse.Namespace) -> None:
    from common import commit, machine

    examples = [e for name in SHARES for e in result["examples"][name]]
    text = (f"\n## Fuzz campaign, {time.strftime('%Y-%m-%d')}, commit {commit()}\n\n"
            f"`python benchmarks/fuzz_campaign.py --cases {args.cases} --seed {args.seed} "
            f"--workers {args.workers}`: {result['cases']} cases in "
            f"{result['seconds']:.0f} s on {machine()}.\n\n{table(result)}\n\n"
            "Peak worker RSS: the highest peak a case of the target raised its worker to (the "
            f"worker's own footprint after its imports, {result['footprint'] / 2**20:.0f} MiB, "
            "included; - : never raised it). Largest: "
            + ", ".join(f"`{case}` {rss / 2**20:.0f} MiB" for rss, case in result["biggest"])
            + ".\n\n"
            + ("Cases outside the contract (replay with `--replay TARGET:SEED`):\n\n"
               + "\n".join(f"- `{e}`" for e in examples) + "\n" if examples else
               "Every case ended in a clean error or valid data.\n"))
    path = ROOT / "RELIABILITY.md"
    if not path.exists():
        path.write_text("# Reliability\n")
    with open(path, "a") as f:
        f.write(text)


KILL_POINTS = [("step", "KILL", 1), ("step", "KILL", 5), ("step", "INT", 2),
               ("step", "INT", 6), ("optimizer", "INT", 1), ("optimizer", "INT", 4),
               ("optimizer", "KILL", 7), ("save", "KILL", 1), ("save", "KILL", 3),
               ("save", "INT", 2), ("eval", "KILL", 1), ("eval", "KILL", 2), ("eval", "INT", 2)]


def crash_sweep() -> tuple[str, int]:
    """The sweep's table (markdown) and how many points failed."""
    import torch
    from tests import crashing

    from hrpose.data.synthetic import write_dataset

    rows = ["| point | signal | n | exit | files left load | resumed = uninterrupted |",
            "|---|---|---|---|---|---|"]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_dataset(root, train=24, val=4, seed=3, workers=1, progress=False)
        whole = Path(tmp) / "whole"
        crashing.run_driver(whole, root)
        reference = crashing.final_weights(whole)
        for point, sig, n in KILL_POINTS:
            run = Path(tmp) / f"{point}-{sig}-{n}"
            status = crashing.run_driver(run, root, point, sig, str(n))
            try:
                crashing.check_left_files(run)
                loads = "yes"
            except Exception as e:
                loads = f"no: {str(e)[:60]}"
            crashing.run_driver(run, root)
            resumed = crashing.final_weights(run)
            same = reference.keys() == resumed.keys() and all(
                torch.equal(reference[k], resumed[k]) for k in reference)
            stale = list(run.glob(".*.tmp"))
            failed += loads != "yes" or not same or bool(stale)
            rows.append(f"| {point} | SIG{sig} | {n} | {status} | {loads} | "
                        f"{'bit for bit' if same else 'DIFFERS'}"
                        f"{' (stale .tmp left)' if stale else ''} |")
            print(rows[-1], flush=True)
    return "\n".join(rows), failed


def attack(args: argparse.Namespace) -> None:
    """The service, batch and video campaigns (attacks.py), reported as JSON rows."""
    import attacks
    from common import commit, machine

    if args.service:
        rows, command = attacks.service_campaign(args.cases, args.seed), \
            f"--service --cases {args.cases} --seed {args.seed}"
    elif args.batch:
        rows, command = attacks.batch_campaign(args.batch, args.seed), \
            f"--batch {args.batch} --seed {args.seed}"
    else:
        rows, command = attacks.video_campaign(args.videos, args.seed), \
            f"--videos {args.videos} --seed {args.seed}"
    body = attacks.service_table(rows) if args.service else \
        "\n".join(f"- `{json.dumps(row)}`" for row in rows)
    print(body)
    if not args.no_report:
        source = os.environ.get("HRPOSE_ATTACK_SRC")
        against = f" (the server: {source})" if source else ""
        with open(ROOT / "RELIABILITY.md", "a") as f:
            f.write(f"\n## Campaign, {time.strftime('%Y-%m-%d')}, commit {commit()}{against}\n\n"
                    f"`python benchmarks/fuzz_campaign.py {command}` on {machine()}:\n\n"
                    f"{body}\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=11000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    p.add_argument("--no-report", action="store_true", help="do not append to RELIABILITY.md")
    p.add_argument("--replay", metavar="TARGET:SEED", help="run one case here, with its "
                   "traceback")
    p.add_argument("--crash-sweep", action="store_true", help="kill training at 13 points "
                   "instead, resume, compare")
    p.add_argument("--service", action="store_true", help="attack a real `hrpose serve` "
                   "instead (--cases malformed requests, then the load scenarios)")
    p.add_argument("--batch", type=int, metavar="KILLS", help="kill a batch job KILLS times, "
                   "rerun, grow the inputs, rerun with another model")
    p.add_argument("--videos", type=int, metavar="N", help="N damaged videos through infer and "
                   "batch planning")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker()
    if args.service or args.batch or args.videos:
        return attack(args)
    if args.crash_sweep:
        from common import commit, machine

        table_text, failed = crash_sweep()
        if not args.no_report:
            with open(ROOT / "RELIABILITY.md", "a") as f:
                f.write(f"\n## Crash sweep, {time.strftime('%Y-%m-%d')}, commit {commit()}\n\n"
                        f"`python benchmarks/fuzz_campaign.py --crash-sweep` on {machine()}: "
                        f"{len(KILL_POINTS)} kill points, {failed} failed.\n\n{table_text}\n")
        return None
    if args.replay:
        sys.path.insert(0, str(ROOT / "tests"))
        from fuzzing import TARGETS

        name, seed = args.replay.split(":")
        with tempfile.TemporaryDirectory() as tmp:
            base, case = Path(tmp) / "base", Path(tmp) / "case"
            base.mkdir()
            case.mkdir()
            print(TARGETS[name].case(TARGETS[name].setup(base), case, random.Random(int(seed))))
        return None
    result = campaign(args.cases, args.seed, args.workers, args.timeout)
    print(table(result))
    for name in SHARES:
        for e in result["examples"][name]:
            print(e)
    if not args.no_report:
        write_report(result, args)
    return None


if __name__ == "__main__":
    main()
