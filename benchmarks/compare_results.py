"""Compare two result trees cell by cell: is every curve.csv byte-identical?

A refactor must keep behaviour; the smoke run is deterministic on one machine, so its curves before and after
a change must match byte for byte, apart from what a deliberate fix changes (name those in the commit).

    python benchmarks/compare_results.py results/smoke /tmp/before/results/smoke [--name curve.csv]

Prints one line per differing or missing file and a summary; exits 1 when anything differs or is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def compare_trees(a: Path, b: Path, name: str = "curve.csv") -> dict[str, list[str]]:
    """{"same": [...], "different": [...], "only_in_a": [...], "only_in_b": [...]}, paths relative to the roots."""
    files_a = {p.relative_to(a).as_posix() for p in a.rglob(name)}
    files_b = {p.relative_to(b).as_posix() for p in b.rglob(name)}
    both = sorted(files_a & files_b)
    different = [f for f in both if (a / f).read_bytes() != (b / f).read_bytes()]
    return {"same": [f for f in both if f not in different], "different": different,
            "only_in_a": sorted(files_a - files_b), "only_in_b": sorted(files_b - files_a)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--name", default="curve.csv", help="file name to compare in every folder (default curve.csv)")
    args = parser.parse_args(argv)
    for root in (args.a, args.b):
        if not root.is_dir():
            parser.error(f"{root}: not a folder")
    out = compare_trees(args.a, args.b, args.name)
    for kind in ("different", "only_in_a", "only_in_b"):
        for f in out[kind]:
            print(f"{kind}: {f}")
    print(f"{len(out['same'])} identical, {len(out['different'])} different, {len(out['only_in_a'])} only in "
          f"{args.a}, {len(out['only_in_b'])} only in {args.b}")
    return 0 if out["same"] and not any(out[k] for k in ("different", "only_in_a", "only_in_b")) else 1


if __name__ == "__main__":
    sys.exit(main())
