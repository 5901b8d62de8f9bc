"""The claims audit's pages: claims.md (the table, then each claim's checks with their per-task evidence) and
claims.rst (the first page of `snakemake --report`)."""

from __future__ import annotations

import math

def _num(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"


def _estimate_text(r: dict) -> str:
    if "value" not in r:
        return r.get("why", "")
    seeds = f"{r['n_seeds_x']}" + (f"/{r['n_seeds_y']}" if r.get("n_seeds_y") is not None else "")
    return f"{_num(r['value'])} [{_num(r['lo'])}, {_num(r['hi'])}], {seeds} seeds"


def detectable_text(c: dict) -> str:
    """The effect a check could detect with 80% probability at the run's seeds and spread."""
    d = c.get("detectable")
    return "n/a" if d is None else f"{_num(d)}"


def _evidence_lines(claim: dict) -> list[str]:
    if not claim["checks"]:
        return [claim.get("why", "")]
    lines = []
    for i, c in enumerate(claim["checks"], 1):
        text = f"check {i}: {c['verdict']} ({c['summary']}"
        ran = [r for r in c["tasks"] if "value" in r]
        if c["scope"] == "aggregate" and "value" in c:
            text += f"; {_estimate_text(c)}"
        elif len(ran) == 1:
            text += f"; {_estimate_text(ran[0])}"
        if c.get("detectable") is not None:
            text += f"; detectable {detectable_text(c)}"
        whys = list(dict.fromkeys([*(r["why"] for r in ran if r.get("why")), *([c["why"]] if c.get("why") else [])]))
        if whys:
            text += "; " + "; ".join(whys)
        lines.append(text + ")")
    return lines


# How a verdict is made, and how often it misleads (benchmarks/claims_calibration.py; docs/claims.md has the tables)
TEST_TEXT = (
    "Each estimate is a mean over seeds (unless a check says IQM) with Welch's t test on either side of the "
    "threshold at 4%; the interval shown is the 92% one (both one-sided tests' bounds). A check over several tasks "
    "is supported when Stouffer's combination of its tasks' tests rejects at 4%, its point estimates lie on the "
    "claimed side on the share of tasks it claims (80% for `all`) and no more tasks than that share allows are "
    "individually against it; contradicted when a partial-conjunction test finds too many tasks against it. A claim "
    "is supported when all its checks are, contradicted when any is (at 4% / its number of checks). Measured by "
    "simulation at the papers' seeds (A 5, B 4): a false `supported` or `contradicted` {rates}. Beside each check: "
    "`detectable`, the effect beyond its threshold that its test finds with 80% probability at this run's seeds and "
    "spread (normalised points for scores).")
MEASURED_RATES = ("at most 5% (within simulation error) for every claim with the truth on its thresholds or "
                  "against it; power of at least 80% at 1 seed SD for claims over 4 or more tasks "
                  "(docs/claims.md, Power and error rates)")


def interval_text(doc: dict) -> str:
    return TEST_TEXT.format(rates=MEASURED_RATES)


def seeds_needed_text(c: dict) -> str:
    """What would decide an inconclusive claim: seeds per cell and their cost, or why no number is given."""
    if "seeds_needed" not in c:
        return "Seeds to decide it: not estimated (a check was not run)."
    if c["seeds_needed"] is None:
        if c.get("n_seeds", 0) < 2:
            return "Seeds to decide it: unknown until a cell has 2 seeds (one seed shows no spread)."
        return ("Seeds to decide it: none within 1,000 per cell; the observed effect is indistinguishable from the "
                "threshold.")
    cost = c.get("seeds_needed_core_hours")
    cost_text = f", about {cost:,.0f} core-hours at this scale's planned rates" if cost is not None else ""
    return (f"Seeds to decide it with 80% probability, were the observed effect and spread the truth: "
            f"{c['seeds_needed']} per cell{cost_text} (normal approximation; `wmaug plan --claim {c['id']}`).")


def claims_markdown(doc: dict) -> str:
    out = [f"# Claims audit (scale `{doc['scale']}`)", "",
           "Each claim of docs/protocol.md checked against the results this harness regenerated (claims file "
           f"`{doc['claims_file']}`). {interval_text(doc)} "
           f"A check with fewer than {doc['min_seeds']} seeds per cell is inconclusive whatever its tests. "
           "`not comparable`: the check's threshold is a number of the paper's budget and this is another scale. "
           "`not run`: the cells a check needs are not in the results at this scale.", "",
           "| claim | figure | verdict | seeds | evidence |", "|---|---|---|---|---|"]
    for c in doc["claims"]:
        fig = f"[{c['figure']}]({c['figure_file']})" if c.get("figure_file") else c["figure"]
        out.append(f"| {c['id']} | {c['paper']}: {fig} | **{c['verdict']}** | {c.get('n_seeds', 0) or '-'} | "
                   + "<br>".join(_evidence_lines(c)).replace("|", "\\|") + " |")
    for c in doc["claims"]:
        out += ["", f"## {c['id']}: {c['verdict']}", "", f"> {c['says']}", ""]
        if c.get("quote"):
            out += [f"The paper ({c.get('where') or c['figure']}): \"{c['quote']}\"", ""]
        if c.get("source") == "harness":
            out += [f"The harness's own question about the paper, not a claim of it ({c.get('where') or c['figure']}).",
                    ""]
        if c.get("detectable_sd"):
            out += [f"At the papers' seeds this claim is supported with 80% probability only when every check shows "
                    f"an effect of {c['detectable_sd']:g} seed standard deviations or more (docs/claims.md, Power).",
                    ""]
        if c.get("figure_file"):
            out += [f"Figure: [{c['figure_file']}]({c['figure_file']})", ""]
        if c["verdict"] == "inconclusive":
            out += [seeds_needed_text(c), ""]
        if not c["checks"]:
            out.append(c.get("why", ""))
        for i, chk in enumerate(c["checks"], 1):
            detect = (f"; detectable effect {detectable_text(chk)}" if chk.get("detectable") is not None else "")
            why = f"; {chk['why']}" if chk.get("why") and chk["scope"] == "per_task" else ""
            out += [f"{i}. `{chk['check']}`: **{chk['verdict']}** ({chk['summary']}{detect}{why})", ""]
            rows = chk["tasks"] if chk["scope"] == "per_task" else (
                [{"env": "pooled", "dataset": "", **{k: chk[k] for k in ("value", "lo", "hi", "n_seeds_x",
                                                                          "n_seeds_y") if k in chk},
                  "verdict": chk["verdict"], "why": chk.get("why", "")}] + chk["tasks"])
            out += ["   | env | dataset | estimate [interval], seeds (x/y) | verdict |",
                    "   |---|---|---|---|"]
            for r in rows:
                why = f" ({r['why']})" if r.get("why") and "value" in r else ""
                out.append(f"   | {r['env']} | {r['dataset']} | {_estimate_text(r)} | {r['verdict']}{why} |")
            out.append("")
    return "\n".join(out) + "\n"


def _rst(text: str) -> str:
    """Plain text safe inside RST (and inside Snakemake's Jinja pass, which the raw block below covers)."""
    for ch in "\\*`|_":
        text = text.replace(ch, "\\" + ch)
    return text


def claims_rst(doc: dict) -> str:
    """The first page of ``snakemake --report``: the claims table, each claim linking to its figure."""
    title = f"Claims audit (scale {doc['scale']})"
    out = ["{% raw %}", title, "=" * len(title), "",
           _rst(f"Every claim of both papers (docs/protocol.md) checked against the regenerated results: verdict, "
                f"evidence (estimate, its 92% interval, seeds per side, the effect it could detect), and the figure "
                f"that shows it. {interval_text(doc)} Fewer than {doc['min_seeds']} seeds per cell: inconclusive. "
                f"The figures "
                f"follow, grouped by paper and figure; claims.md and claims.json hold the per-task evidence."), "",
           ".. list-table::", "   :header-rows: 1", "   :widths: 6 10 40 12 32", "",
           "   * - claim", "     - figure", "     - says", "     - verdict", "     - evidence"]
    for c in doc["claims"]:
        fig = f"`{c['figure_file']}`_" if c.get("figure_file") else _rst(c["figure"])
        evidence = _rst("; ".join(_evidence_lines(c)))
        out += [f"   * - {_rst(c['id'])}", f"     - {_rst('Paper ' + c['paper'])}: {fig}",
                f"     - {_rst(c['says'])}", f"     - **{c['verdict']}**", f"     - {evidence or '-'}"]
    out += ["", "{% endraw %}", ""]
    return "\n".join(out)
