"""`snakemake --lint` on the workflow: every finding is one docs/design.md justifies ("What `snakemake --lint` still
says, and why"), and nothing else. A new rule that reads a global in its shell, mixes functions into a rule file or
hard-codes an output prefix fails here."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import ROOT

# Finding titles docs/design.md justifies, each with the rules it may name (None: any rule).
JUSTIFIED = {
    # CFG_ARG names the effective config file by its hash: as a param, any config edit would re-run every job
    "Shell command directly uses variable CFG_ARG from outside of the rule": None,
    # the pip lock is the pinned software stack; a conda env file the rules can use is still to come (issue 35)
    "Specify a conda environment or container for each rule.": None,
}


def lint_findings(text: str) -> list[tuple[str, str]]:
    """(what, finding title) for each finding of `snakemake --lint`'s text output."""
    found, what = [], None
    for line in text.splitlines():
        head = re.match(r"Lints for (rule \S+|snakefile [^:]+)", line)
        if head:
            what = head.group(1)
            continue
        item = re.match(r"    \* (.+?):?$", line)
        if item and what:
            found.append((what, item.group(1)))
    return found


def test_lint_findings_are_read_off_snakemakes_text():
    text = ("Lints for snakefile /w/rules/a.smk:\n    * Mixed rules and functions in same snakefile.:\n      more\n\n"
            "Lints for rule x (line 4, /w/rules/a.smk):\n    * Shell command directly uses variable S from outside of "
            "the rule:\n      It is recommended\n")
    assert lint_findings(text) == [("snakefile /w/rules/a.smk", "Mixed rules and functions in same snakefile."),
                                   ("rule x", "Shell command directly uses variable S from outside of the rule")]


@pytest.mark.slow  # runs snakemake --lint (about 10 s)
def test_snakemake_lint_finds_only_what_the_design_doc_justifies():
    out = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--config", "scale=smoke"], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    findings = lint_findings(text)
    assert out.returncode == 0 or findings, text[-3000:]  # a failure that is no finding (a parse error) fails here
    unjustified = [(what, title) for what, title in findings if title not in JUSTIFIED]
    assert not unjustified, "snakemake --lint findings not justified in docs/design.md:\n" + "\n".join(
        f"  {what}: {title}" for what, title in unjustified)
    design = (ROOT / "docs" / "design.md").read_text()
    for title in JUSTIFIED:
        assert title in design, f"docs/design.md does not justify: {title}"
