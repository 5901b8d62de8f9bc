"""Mutation testing of the modules whose mistakes would silently change a result (docs/testing.md).

mutmut 3 (`pip install mutmut==3.8.1`) breaks the code one small change at a time (an operator, a constant, an
argument dropped) and runs the fast tests that cover the changed function; a mutant the tests still pass "survived".
Each group below names the modules to mutate and the test files that drive them.

    python benchmarks/mutation.py run --group paper_b        # minutes to an hour a group on 2 cores
    python benchmarks/mutation.py report --group paper_b     # benchmarks/mutation/<group>.csv and the score table
    python benchmarks/mutation.py check --group paper_b_core --min-score 0.9   # CI: fail under the kill rate
    python benchmarks/mutation.py run --group claims --sample 150 --only '*evaluate_check*' '*_welch*'

Large groups (claims and aggregation: about 2,900 mutants, hours on 2 cores) are scored on a seeded random sample of
each module's mutants (--sample N, --sample-seed), optionally among the mutants whose names match --only's globs;
the report then gives the score with its 95% Wilson interval, and the mutants not drawn are marked "not drawn".

`run` works in a copy of the repository (--work, default /tmp/wmaug-mutation/<group>), never in the checkout: mutmut
rewrites the sources it mutates. The copy is imported through an interpreter that sees this environment's packages
but not an editable install of wmaug, so the tests import the mutated copy and not the checkout.

Scores: killed / (killed + survived + timeouts) per module. Mutants in functions that no selected test runs ("no
tests") are counted apart: they are untested code, not a weak test, and the report lists them per function.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import site
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "mutation"
FAST = ["-m", "not slow", "-p", "no:cacheprovider", "-x", "-q"]

GROUPS = {
    # the learners' update rules
    "algos": {"mutate": ["wmaug/algos/awac.py", "wmaug/algos/bcq.py", "wmaug/algos/cql.py",
                         "wmaug/algos/ensemble_sac.py", "wmaug/algos/fqe.py", "wmaug/algos/sac.py",
                         "wmaug/algos/td3.py", "wmaug/algos/common.py"],
              "tests": ["tests/test_loss_equations.py", "tests/test_learner_contracts.py", "tests/test_recipe_losses.py",
                        "tests/test_offline_algos.py", "tests/test_batched_td3.py", "tests/test_learning.py"]},
    # paper A's augmentation of TD3+BC's batches
    "augment": {"mutate": ["wmaug/paper_a/augment.py"],
                "tests": ["tests/test_pipeline.py", "tests/test_paper_a_ablations.py", "tests/test_recipe_losses.py",
                          "tests/test_world_model.py"]},
    # paper B's balanced replay, density ratio and fine-tuning loop
    "paper_b": {"mutate": ["wmaug/paper_b/samplers.py", "wmaug/paper_b/prioritized.py",
                           "wmaug/paper_b/density_ratio.py", "wmaug/paper_b/finetune.py"],
                "tests": ["tests/test_balanced_replay.py", "tests/test_finetune.py", "tests/test_recipe_losses.py",
                          "tests/test_replay.py"]},
    # CI's group: balanced replay's wiring and priorities, the mechanism paper B's claims rest on
    "paper_b_core": {"mutate": ["wmaug/paper_b/samplers.py", "wmaug/paper_b/density_ratio.py"],
                     "tests": ["tests/test_balanced_replay.py"]},
    # the verdicts and the aggregation they read
    "claims": {"mutate": ["wmaug/report/claims.py", "wmaug/report/aggregate.py"],
               "tests": ["tests/test_claims.py", "tests/test_claims_contracts.py", "tests/test_report.py",
                         "tests/test_aggregate_contracts.py", "tests/test_report_a.py", "tests/test_report_b.py"]},
}


def work_dir(group: str, work: str | None) -> Path:
    return Path(work) if work else Path("/tmp/wmaug-mutation") / group


def isolated_python(work: Path) -> Path:
    """An interpreter with this environment's packages but without its editable wmaug (a .pth naming the site
    directories runs none of their own .pth files, so the editable finder is not installed)."""
    venv = work / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        dirs = [d for d in site.getsitepackages() if Path(d).is_dir()]
        pth = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages" / "env.pth"
        pth.write_text("\n".join(dirs) + "\n")
    return venv / "bin" / "python"


def prepare(group: str, work: Path, root: Path = ROOT) -> None:
    """A fresh copy of what the tests need (from `root`: this checkout, or another commit's worktree for a score
    before a change), with the group's mutmut settings in its pyproject.toml; test files `root` lacks are left out."""
    g = GROUPS[group]
    for name in ("wmaug", "tests", "config", "docs", "benchmarks", "mutants"):
        shutil.rmtree(work / name, ignore_errors=True)
    (work / "drawn.json").unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("wmaug", "tests", "config", "docs"):  # docs: the claims tests read docs/claims.md
        shutil.copytree(root / name, work / name, ignore=ignore)
    shutil.copytree(root / "benchmarks", work / "benchmarks", ignore=shutil.ignore_patterns(
        "__pycache__", "parity", "gpu", "mutation"))
    text = (root / "pyproject.toml").read_text()
    tests = [t for t in g["tests"] if (root / t).exists()]
    settings = {"source_paths": ["wmaug/"], "only_mutate": g["mutate"], "also_copy": ["config/", "docs/", "benchmarks/"],
                "pytest_add_cli_args_test_selection": tests, "pytest_add_cli_args": FAST}
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    (work / "pyproject.toml").write_text(text + "\n".join(lines) + "\n")


def run(group: str, work: Path, children: int | None, root: Path = ROOT, sample: int | None = None,
        sample_seed: int = 0, only: list[str] | None = None) -> None:
    prepare(group, work, root)
    python = isolated_python(work)
    cmd = [str(python), "-m", "mutmut", "run"] + (["--max-children", str(children)] if children else [])
    names = list(only or [])
    if sample is not None:
        names = drawn_mutants(work, python, cmd, sample, sample_seed, only)
        (work / "drawn.json").write_text(json.dumps(names))
    print(f"mutmut in {work}: {' '.join(cmd)} ({len(names) or 'all'} mutant names or globs)", flush=True)
    subprocess.run(cmd + names, cwd=work, check=False)


def drawn_mutants(work: Path, python: Path, cmd: list[str], n: int, seed: int, only: list[str] | None) -> list[str]:
    """A seeded random draw of up to n mutants per module (among those matching `only`'s globs). mutmut names its
    mutants only once it has generated them, so a first run with a name that matches nothing generates them (and
    collects the test coverage the real run reuses) and stops."""
    from fnmatch import fnmatch

    subprocess.run(cmd + ["wmaug-mutation-generate-only"], cwd=work, check=False, capture_output=True)
    by_module = defaultdict(list)
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        for name in json.loads(meta.read_text())["exit_code_by_key"]:
            if not only or any(fnmatch(name, pattern) for pattern in only):
                by_module[meta.name].append(name)
    if not by_module:
        raise SystemExit(f"no mutants of group under {work}/mutants match {only}")
    rng = random.Random(seed)
    return [name for names in by_module.values() for name in sorted(rng.sample(sorted(names), min(n, len(names))))]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a kill rate k / n (a sampled score's uncertainty)."""
    if n == 0:
        return float("nan"), float("nan")
    centre, half = (k + z * z / 2) / (n + z * z), z * math.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def mutants(work: Path) -> list[dict]:
    """Every mutant of the last run: its module, function, status and the changed line(s)."""
    from mutmut.stats import status_by_exit_code  # mutmut's own reading of a mutant's exit code

    drawn_file = work / "drawn.json"
    drawn = set(json.loads(drawn_file.read_text())) if drawn_file.exists() else None
    rows = []
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        module = str(meta.relative_to(work / "mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            function = name.split(".")[-1].rsplit("__mutmut_", 1)[0].lstrip("x").replace("ǁ", ".").strip(".")
            status = status_by_exit_code[code] if drawn is None or name in drawn else "not drawn"
            rows.append({"module": module, "function": function, "mutant": name, "status": status})
    return rows


def diff_of(work: Path, name: str) -> str:
    out = subprocess.run([str(isolated_python(work)), "-m", "mutmut", "show", name], cwd=work, capture_output=True,
                         text=True).stdout
    changed = [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    return " | ".join(line.strip() for line in changed)


def scores(rows: list[dict]) -> dict[str, dict]:
    by_module: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        by_module[r["module"]][r["status"]] += 1
    out = {}
    for module, c in sorted(by_module.items()):
        tested = c["killed"] + c["survived"] + c["timeout"]
        low, high = wilson(c["killed"], tested)
        out[module] = {**{k: c[k] for k in ("killed", "survived", "timeout", "no tests", "not drawn")}, **c,
                       "score": c["killed"] / tested if tested else float("nan"), "low": low, "high": high}
    return out


def report(group: str, work: Path, with_diffs: bool, name: str | None = None,
           rerun_of: str | None = None) -> dict[str, dict]:
    """The score table of the run in `work`, written to benchmarks/mutation/<name>.csv. With `rerun_of` (a table's
    name there), `work` holds a rerun of some of that table's mutants (`run --only`, e.g. its survivors after new
    tests): their new statuses replace the old ones and the merged table is scored."""
    import pandas as pd

    rows = mutants(work)
    if not rows:
        raise SystemExit(f"no mutmut results under {work}/mutants: run `python {Path(__file__).name} run --group "
                         f"{group}` first")
    if rerun_of is not None:
        rows = [r for r in rows if r["status"] not in ("not checked", "not drawn")]
    if with_diffs:
        for r in rows:
            r["change"] = diff_of(work, r["mutant"]) if r["status"] in ("survived", "no tests", "timeout") else ""
    if rerun_of is not None:
        again = {r["mutant"]: r for r in rows}
        rows = pd.read_csv(OUT / f"{rerun_of}.csv", keep_default_na=False).to_dict("records")
        for r in rows:
            if r["mutant"] in again:
                r.update(status=again[r["mutant"]]["status"], change=again[r["mutant"]].get("change", ""))
    OUT.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(OUT / f"{name or group}.csv", index=False)
    table = scores(rows)
    print(f"{'module':<36} {'killed':>7} {'survived':>9} {'timeout':>8} {'no tests':>9} {'not drawn':>10} "
          f"{'score':>6}  95% interval")
    for module, s in table.items():
        print(f"{module:<36} {s['killed']:>7} {s['survived']:>9} {s['timeout']:>8} {s['no tests']:>9} "
              f"{s['not drawn']:>10} {s['score']:>6.3f}  {s['low']:.3f}-{s['high']:.3f}")
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "report", "check"):
        p = sub.add_parser(name)
        p.add_argument("--group", required=True, choices=sorted(GROUPS))
        p.add_argument("--work", default=None, help="working copy (default /tmp/wmaug-mutation/<group>)")
        if name in ("run", "check"):
            p.add_argument("--children", type=int, default=None, help="mutants run at once (default: CPU count)")
            p.add_argument("--root", default=str(ROOT), help="the repository to copy (default: this checkout; "
                                                             "a worktree of another commit gives its score)")
            p.add_argument("--sample", type=int, default=None, help="run a seeded random draw of this many mutants "
                                                                     "per module (default: all)")
            p.add_argument("--sample-seed", type=int, default=0)
            p.add_argument("--only", nargs="+", default=None, help="globs on mutant names (mutmut run's names)")
        if name == "report":
            p.add_argument("--no-diffs", action="store_true", help="leave the changed lines out (faster)")
            p.add_argument("--name", default=None, help="the table's name under benchmarks/mutation (default: group)")
            p.add_argument("--rerun-of", default=None, help="merge this rerun into that table (its name there)")
        if name == "check":
            p.add_argument("--min-score", type=float, required=True, help="fail when a module's kill rate is lower")
    args = parser.parse_args(argv)
    work = work_dir(args.group, args.work)
    if args.command == "run":
        run(args.group, work, args.children, Path(args.root), args.sample, args.sample_seed, args.only)
    elif args.command == "report":
        report(args.group, work, not args.no_diffs, args.name, args.rerun_of)
    else:
        run(args.group, work, args.children, Path(args.root), args.sample, args.sample_seed, args.only)
        table = report(args.group, work, with_diffs=True)
        low = {m: s["score"] for m, s in table.items() if not s["score"] >= args.min_score}
        if low:
            raise SystemExit(f"mutation score under {args.min_score}: {low} (survivors in {OUT / args.group}.csv)")
        print(f"every module of {args.group} kills at least {args.min_score:.0%} of its tested mutants")


if __name__ == "__main__":
    main()
