"""The evidence run's bookkeeping (docs/evidence.md): what has finished, what each job took against the planner's
estimate, and the datasets' returns beside D4RL's, written next to the committed results.

    python benchmarks/evidence.py sync [--scale evidence] [--markdown]

Writes, under the scale's results_dir:
  datasets/<env>/<kind>.json, behaviour/<env>.json   the dataset and behaviour jobs' records (returns, provenance)
  datasets.csv        each dataset's mean episode return and normalised score beside D4RL v2's published ones
  job_times.csv       every finished job of the scale's Snakemake runs: its wall time (from Snakemake's logs) and
                      the planner's estimate (`wmaug plan`, config/rates.yaml) side by side
and prints how many cells have finished. Safe to run while the DAG runs: it only reads the DAG's outputs.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
from datetime import datetime
from pathlib import Path

from wmaug.core import config as C
from wmaug.report.plan import cells_of, job_seconds, jobs_of, load_rates

ROOT = Path(__file__).resolve().parent.parent
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
START = re.compile(r"^(?:local)?rule (\w+):$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)")
# the planner's job keys, from a job's wildcards (wmaug/report/plan.py: jobs_of)
KEYS = {"behaviour_run": ("env", "seed"), "dataset": ("env", "kind"), "pretrain": ("algo", "env", "dataset", "block"),
        "cell": ("study", "env", "dataset", "method", "seed"), "world_model": ("env", "dataset", "n", "seed"),
        "world_model_converged": ("env", "dataset", "n", "seed"), "subsample": ("env", "dataset", "n", "seed")}


def snakemake_jobs(log: Path) -> list[dict]:
    """Every finished job of one Snakemake log: rule, wildcards, start, end (a job that failed or was cut off has no
    end and is left out)."""
    jobs, open_jobs, stamp, current = [], {}, None, None
    for line in log.read_text(errors="replace").splitlines():
        line = line.rstrip()
        if m := STAMP.match(line):
            stamp = datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
            continue
        if m := START.match(line):
            current = {"rule": m.group(1), "start": stamp, "wildcards": {}}
            continue
        s = line.strip()
        if current is not None and s.startswith("jobid:"):
            open_jobs[int(s.split()[1])] = current
        elif current is not None and s.startswith("wildcards:"):
            current["wildcards"] = dict(kv.split("=", 1) for kv in s[len("wildcards:"):].strip().split(", "))
        elif m := FINISHED.match(s):
            job = open_jobs.pop(int(m.group(1)), None)
            if job is not None:
                jobs.append({**job, "end": stamp})
    return jobs


def planner_key(job: dict) -> tuple | None:
    names = KEYS.get(job["rule"])
    if names is None or any(n not in job["wildcards"] for n in names):
        return None
    values = []
    for n in names:
        v = job["wildcards"][n]
        values.append(int(v) if n in ("seed", "block", "n") else v)
    return (job["rule"], *values)


def scale_logs(scale: str) -> list[Path]:
    return sorted(p for p in (ROOT / ".snakemake" / "log").glob("*.snakemake.log")
                  if f"scale={scale}" in p.read_text(errors="replace")[:4000])


def sync(scale: str, markdown: bool = False) -> None:
    cfg = C.load_config(ROOT / "config" / "config.yaml", scale)
    s = C.scale_cfg(cfg)
    out = ROOT / s["results_dir"]
    res = ROOT / C.resources_dir(cfg)
    rows = []
    for path in sorted((res / "datasets").glob("*/*.json")):
        env, kind = path.parent.name, path.stem
        dest = out / "datasets" / env / path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        r = json.loads(path.read_text()).get("returns", {})
        rows.append({"env": env, "kind": kind, "mean_return": r.get("mean_return"),
                     "normalized_score": r.get("normalized_score"), "episodes": r.get("episodes"),
                     "d4rl_v2_mean_return": r.get("d4rl_v2_mean_return"),
                     "d4rl_v2_normalized_score": r.get("d4rl_v2_normalized_score")})
    for path in sorted((res / "behaviour").glob("*/behaviour.json")):
        dest = out / "behaviour" / f"{path.parent.name}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    write_csv(out / "datasets.csv", rows)

    rates, _ = load_rates("cpu")
    cells, traces = cells_of(cfg, None, ROOT / "config" / "claims.yaml")
    planned = jobs_of(cfg, cells, traces, whole=True)
    times = []
    for log in scale_logs(scale):
        for job in snakemake_jobs(log):
            key = planner_key(job)
            est = job_seconds(planned[key], rates) if key in planned else None
            times.append({"rule": job["rule"], "job": ",".join(f"{k}={v}" for k, v in job["wildcards"].items()),
                          "start": job["start"].isoformat(), "wall_s": (job["end"] - job["start"]).total_seconds(),
                          "planner_s": None if est is None else round(est, 1), "log": log.name})
    write_csv(out / "job_times.csv", times)
    done = sum((ROOT / C.cell_dir(cfg, c["study"], c["env"], c["dataset"], c["method"], c["seed"])
                / "summary.json").is_file() for c in cells)
    print(f"{scale}: {done} of {len(cells)} cells finished; {len(times)} finished jobs timed; "
          f"{len(rows)} datasets -> {out.relative_to(ROOT)}")
    by_rule: dict[str, list[float]] = {}
    for t in times:
        if t["planner_s"]:
            by_rule.setdefault(t["rule"], [0.0, 0.0, 0])
            by_rule[t["rule"]][0] += t["wall_s"]
            by_rule[t["rule"]][1] += t["planner_s"]
            by_rule[t["rule"]][2] += 1
    for rule, (wall, est, n) in by_rule.items():
        print(f"  {rule:<14} {n:>3} jobs: measured {wall / 3600:6.2f} h, planner {est / 3600:6.2f} h "
              f"(measured / planner {wall / est:.2f})")
    if markdown:  # the tables of docs/evidence.md
        print("\n| job | planner (s) | measured (s) | measured / planner |\n|---|---|---|---|")
        for t in times:
            if t["planner_s"]:
                print(f"| {t['rule']} {t['job'].replace(',', ', ')} | {t['planner_s']:,.0f} | {t['wall_s']:,.0f} | "
                      f"{t['wall_s'] / t['planner_s']:.2f} |")
        print("\n| env | dataset | harness: mean return (normalised) | episodes | D4RL v2: mean return (normalised) |"
              "\n|---|---|---|---|---|")
        for r in rows:
            d4rl = (f"{r['d4rl_v2_mean_return']:,.0f} ({r['d4rl_v2_normalized_score']:.1f})"
                    if r["d4rl_v2_mean_return"] is not None else "")
            print(f"| {r['env']} | {r['kind']} | {r['mean_return']:,.0f} ({r['normalized_score']:.1f}) | "
                  f"{r['episodes']} | {d4rl} |")


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sync", help="copy the datasets' records, time the finished jobs, count finished cells")
    p.add_argument("--scale", default="evidence")
    p.add_argument("--markdown", action="store_true", help="also print docs/evidence.md's cost and dataset tables")
    args = parser.parse_args()
    sync(args.scale, args.markdown)


if __name__ == "__main__":
    main()
