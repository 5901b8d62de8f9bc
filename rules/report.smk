# Aggregation with rliable and the figures, one report job per study.


def figure_files(study):
    from wmaug.report.build import figure_names

    out = S["figures_dir"]
    names = figure_names(CFG["studies"][study]["pipeline"])
    return [f"{out}/{study}_{name}.{ext}" for name in names for ext in ("png", "pdf", "csv")]


def report_inputs(wc):
    inputs = study_summaries(wc.study) + analysis_outputs(wc.study)
    if CFG["studies"][wc.study]["pipeline"] == "balanced_replay" and "halfcheetah" in CFG["studies"][wc.study]["envs"]:
        inputs.append(f"{S['results_dir']}/balanced_replay/fig1a_loglik.csv")
    return inputs


def report_tables(study):
    out = f"{S['results_dir']}/{study}"
    return [f"{out}/{name}.csv" for name in ("scores", "curve_intervals", "aggregate_metrics", "probability_of_improvement")]


def figure_pattern(pipeline):
    from wmaug.report.build import figure_names

    return [f"{S['figures_dir']}/{{study}}_{name}.{ext}" for name in figure_names(pipeline) for ext in ("png", "pdf", "csv")]


# One report rule per pipeline (their figures differ), each matching only its own studies.
for _pipeline in ("wmaug", "balanced_replay"):
    _studies = [s for s, g in CFG["studies"].items() if g["pipeline"] == _pipeline]
    if not _studies:
        continue

    rule:
        name:
            f"report_{_pipeline}"
        input:
            report_inputs,
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
