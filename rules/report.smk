# Aggregation with rliable and the figures, one report job per study; then the claims' verdicts.
# Every figure is marked for `snakemake --report`: grouped by paper (category) and figure (subcategory).


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
            figures_out=lambda wc, output: str(Path(output.figures[0]).parent),
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
    params:
        out_dir=lambda wc, output: str(Path(output.json).parent),
    threads: 1
    resources:
        runtime=10,
        mem_mb=4000,
    shell:
        "wmaug claims {CFG_ARG} --claims {input.claims} --out-dir {params.out_dir} > {log} 2>&1"


rule plan:
    """`snakemake plan`: what the DAG of this config will cost (jobs per rule, updates, environment steps, core-hours
    at measured rates), printed without running anything else; `wmaug plan --claim ID` does the same for claims.
    `snakemake -n plan` prints the same table as the job's message (computed only when plan is in the DAG)."""
    localrule: True
    log:
        f"{LOGS}/plan.log",
    params:
        text=_plan_text,
    message:
        "{params.text}"
    shell:
        "wmaug plan {CFG_ARG} 2> {log}"


# `snakemake claim_A2`: one claim on its own. Only the cells its checks read run (and what they need: samples,
# world models, datasets, behaviour policies, pre-trained blocks, Fig 5's traces), then a report of those cells and
# the claim's verdict page go to <figures_dir>/claims/<ID>/.
for _claim in C_claims.load_claims(CLAIMS_FILE).claims:
    rule:
        name:
            f"claim_{_claim.id}"
        input:
            claim_cell_inputs(CFG, _claim),
            claims=CLAIMS_FILE,
        output:
            md=f"{S['figures_dir']}/claims/{_claim.id}/claims.md",
            json=f"{S['figures_dir']}/claims/{_claim.id}/claims.json",
        log:
            f"{LOGS}/report/claim_{_claim.id}.log",
        params:
            claim=_claim.id,
            out_dir=lambda wc, output: str(Path(output.md).parent),
        threads: 1
        resources:
            runtime=30,
            mem_mb=8000,
        shell:
            "wmaug claim {CFG_ARG} --claim {params.claim} --claims {input.claims} --out-dir {params.out_dir} > {log} 2>&1"
