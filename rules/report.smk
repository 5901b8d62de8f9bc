# Aggregation with rliable and the figures, one report job per study.


def figure_files(study):
    out = S["figures_dir"]
    return [f"{out}/{study}_{name}.{ext}" for name in ("fig3", "aggregate") for ext in ("png", "pdf", "csv")]


def report_tables(study):
    out = f"{S['results_dir']}/{study}"
    return [f"{out}/{name}.csv" for name in ("scores", "curve_intervals", "aggregate_metrics", "probability_of_improvement")]


rule report:
    input:
        lambda wc: study_summaries(wc.study),
    output:
        tables=report_tables("{study}"),
        figures=figure_files("{study}"),
    log:
        f"{LOGS}/report/{{study}}.log",
    params:
        cells=lambda wc, input: " ".join(str(Path(p).parent) for p in input),
        results_out=lambda wc: f"{S['results_dir']}/{wc.study}",
        figures_out=S["figures_dir"],
    threads: 1
    resources:
        runtime=30,
        mem_mb=8000,
    shell:
        "wmaug report {CFG_ARG} --study {wildcards.study} --cells {params.cells} --results-out {params.results_out}"
        " --figures-out {params.figures_out} 2> {log}"
