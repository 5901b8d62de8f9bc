# Aggregation with rliable and the figures, one report job per study; then the claims' verdicts.
# Every figure is marked for `snakemake --report`: grouped by paper (category) and figure (subcategory).


def figure_files(study):
    out = S["figures_dir"]
    return [f"{out}/{study}_{name}.{ext}" for name in study_paper(CFG, study).figures for ext in ("png", "pdf", "csv")]


def report_inputs(wc):
    inputs = study_summaries(wc.study) + analysis_outputs(wc.study)
    if study_paper(CFG, wc.study).likelihood_shift and "halfcheetah" in CFG["studies"][wc.study]["envs"]:
        inputs.append(f"{S['results_dir']}/balanced_replay/fig1a_loglik.csv")
    return inputs


def pending_inputs_file(study):
    """A file naming the study report's inputs that do not exist yet: an input of the report.

    Snakemake does not re-run a job whose outputs exist only because some of its inputs are missing (that is how it
    lets temp files go), so the tables of a partial run (the evidence scale's, which are tracked) would end a later
    run before its missing cells. While inputs are missing, this file is rewritten at each planning, newer than the
    tables: the report is out of date and its missing inputs are made first. With none missing it is empty and dated
    1970, so it never re-runs a finished report."""
    path = Path(".snakemake/wmaug/pending") / f"{S['results_dir'].strip('/').replace('/', '_')}-{study}.txt"
    # Only the Snakemake that plans the run writes it: a cluster job's own Snakemake reads it as it is.
    if getattr(workflow, "remote_exec", False) or getattr(workflow, "subprocess_exec", False):
        return str(path)
    missing = [p for p in report_inputs(SimpleNamespace(study=study)) if not Path(p).exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    if missing:
        path.write_text("".join(f"{p}\n" for p in missing))
    elif not path.is_file() or path.stat().st_size:
        path.write_text("")
        os.utime(path, (0, 0))
    return str(path)


def report_tables(study):
    out = f"{S['results_dir']}/{study}"
    return [f"{out}/{name}.csv" for name in ("scores", "curve_intervals", "aggregate_metrics", "probability_of_improvement")]


def figure_pattern(pipeline):
    out = []
    for name in paper(pipeline).figures:
        png = f"{S['figures_dir']}/{{study}}_{name}.png"
        out.append(report(png, caption="report/figure.rst", category=paper(pipeline).title + " ({study})",
                          subcategory=name, labels={"figure": name, "study": "{study}"}))
        out += [f"{S['figures_dir']}/{{study}}_{name}.{ext}" for ext in ("pdf", "csv")]
    return out


# One report rule per pipeline (their figures differ), each matching only its own studies.
for _pipeline in PAPERS:
    _studies = [s for s, g in CFG["studies"].items() if g["pipeline"] == _pipeline]
    if not _studies:
        continue

    rule:
        name:
            f"report_{_pipeline}"
        input:
            report_inputs,
            pending=lambda wc: pending_inputs_file(wc.study),
        output:
            tables=report_tables("{study}"),
            figures=figure_pattern(_pipeline),
        log:
            f"{LOGS}/report/{{study}}.log",
        wildcard_constraints:
            study="|".join(_studies),
        params:
            cells=lambda wc, input: " ".join(str(Path(p).parent) for p in input if p.endswith("summary.json")),
            results_out=lambda wc: f"{S['results_dir']}/{wc.study}",
            figures_out=S["figures_dir"],
        threads: 1
        resources:
            runtime=30,
            mem_mb=8000,
        shell:
            "wmaug report {CFG_ARG} --study {wildcards.study} --cells {params.cells} --results-out {params.results_out}"
            " --figures-out {params.figures_out} 2> {log}"


rule claims:
    """Every claim of config/claims.yaml checked against the aggregated results: claims.md / .json, and claims.rst,
    the first page of `snakemake --report`."""
    input:
        claims=CLAIMS_FILE,
        results=C_claims.claim_inputs(CFG),
        figures=[figure_files(study) for study in CFG["studies"]],
    output:
        md=report(f"{S['figures_dir']}/claims.md", caption="report/claims.rst", category="Claims"),
        json=f"{S['figures_dir']}/claims.json",
        rst=f"{S['figures_dir']}/claims.rst",
    log:
        f"{LOGS}/report/claims.log",
    threads: 1
    resources:
        runtime=10,
        mem_mb=4000,
    shell:
        "wmaug claims {CFG_ARG} --claims {input.claims} --out-dir {S[figures_dir]} > {log} 2>&1"


def _plan_text(wildcards) -> str:
    from wmaug.report.plan import plan, plan_text

    return plan_text(plan(CFG, CFG.get("claims")))


rule plan:
    """`snakemake plan`: what the DAG of this config will cost (jobs per rule, updates, environment steps, core-hours
    at measured rates), printed without running anything else; `wmaug plan --claim ID` does the same for claims.
    `snakemake -n plan` prints the same table as the job's message (computed only when plan is in the DAG)."""
    localrule: True
    params:
        text=_plan_text,
    message:
        "{params.text}"
    shell:
        "wmaug plan {CFG_ARG}"


# `snakemake claim_A2`: one claim on its own. Only the cells its checks read run (and what they need: samples,
# world models, datasets, behaviour policies, pre-trained blocks, Fig 5's traces), then a report of those cells and
# the claim's verdict page go to <figures_dir>/claims/<ID>/.
for _claim in C_claims.load_claims(CLAIMS_FILE).claims:
    rule:
        name:
            f"claim_{_claim.id}"
        input:
            claim_cell_inputs(CFG, _claim),
        output:
            md=f"{S['figures_dir']}/claims/{_claim.id}/claims.md",
            json=f"{S['figures_dir']}/claims/{_claim.id}/claims.json",
        log:
            f"{LOGS}/report/claim_{_claim.id}.log",
        params:
            claim=_claim.id,
        threads: 1
        resources:
            runtime=30,
            mem_mb=8000,
        shell:
            "wmaug claim {CFG_ARG} --claim {params.claim} --claims " + CLAIMS_FILE
            + " --out-dir " + f"{S['figures_dir']}/claims/{_claim.id}" + " > {log} 2>&1"
