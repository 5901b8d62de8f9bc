# Functions the rules call (input functions, paths, specs), apart from the rules themselves (snakemake --lint:
# rules and functions in separate files). Included first: they read CFG, S and C from the Snakefile, and the
# globals of the rule files only when called.


# --- Snakefile's
def figures_inputs(wc):
    """The whole grid's figures and verdicts; with `--config claims=[...]`, those claims' targets only."""
    if CFG.get("claims"):
        return [f"{S['figures_dir']}/claims/{cid}/claims.md" for cid in CFG["claims"]]
    return [f for study in CFG["studies"] for f in figure_files(study)] + list(rules.claims.output)


# --- rules/datasets.smk's
def dataset_inputs(wc):
    if wc.kind == "random":
        return []
    if wc.kind == "medium-expert":
        # the parts' markers, where the harness builds them (a source stands ready)
        return [m for k in ("medium", "expert") for m in C.dataset_input(CFG, wc.env, k)]
    return [C.behaviour_path(CFG, wc.env)]


def sample_inputs(wc):
    # A user-provided source replaces the built dataset (and everything upstream of it).
    return [] if C.dataset_source(CFG, wc.env, wc.dataset) else [C.dataset_marker(CFG, wc.env, wc.dataset)]


# --- rules/pretrain.smk's
def pretrain_spec(wc):
    return C.pretrain_spec(CFG, wc.algo, wc.env, wc.dataset, int(wc.block))


def pretrain_inputs(wc):
    inputs = C.dataset_input(CFG, wc.env, wc.dataset)
    if wc.algo == "fqe":
        inputs.append(C.pretrained_path(CFG, "cql", wc.env, wc.dataset, int(wc.block)))
    return inputs


# --- rules/cells.smk's
def cell_spec(wc):
    return C.cell_spec(CFG, wc.study, wc.env, wc.dataset, wc.method, int(wc.seed))


def cell_inputs(wc):
    spec = cell_spec(wc)
    return paper(spec.pipeline).load("cell_inputs")(CFG, spec)


def cell_runtime(wc):
    """Minutes to ask a cluster for (the paper's estimate from its budget)."""
    spec = cell_spec(wc)
    return paper(spec.pipeline).load("cell_minutes")(CFG, spec)


def seed_wildcards(wc, study, seed):
    """One seed's wildcards within a seed group's job (whose rule fixes study and seeds)."""
    return SimpleNamespace(study=study, env=wc.env, dataset=wc.dataset, method=wc.method, seed=seed)


def study_summaries(study):
    return [f"{C.cell_dir(CFG, **cell)}/summary.json" for cell in C.grid_cells(CFG, study)]


# --- rules/analysis.smk's
def _wm_study():
    return [s for s in CFG["studies"] if study_paper(CFG, s).world_model_analyses]


def _critic_trace_job(wc):
    for job in C.critic_trace_jobs(CFG, wc.study):
        if (job["env"], job["dataset"]) == (wc.env, wc.dataset):
            return job
    raise ValueError(f"study {wc.study} has no Fig 5 task {wc.env}/{wc.dataset}")


def analysis_outputs(study):
    """What the study's report reads beside its cells."""
    if not study_paper(CFG, study).world_model_analyses:
        return []
    out = [p for job in C.world_model_error_jobs(CFG, study)
           for p in C.world_model_error_paths(CFG, study, job["env"], job["dataset"], job["seed"]).values()]
    out += [C.critic_trace_path(CFG, study, j["env"], j["dataset"]) for j in C.critic_trace_jobs(CFG, study)]
    out += [p for j in C.converged_world_model_jobs(CFG, study)
            for p in C.world_model_error_paths(CFG, study, j["env"], j["dataset"], j["seed"], converged=True).values()]
    return out


# --- rules/report.smk's
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
    path = Path(".snakemake/wmaug/pending") / f"{'_'.join(Path(S['results_dir']).parts[Path(S['results_dir']).is_absolute():])}-{study}.txt"
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
        out.append(report(png, caption="report/figure.rst", category=f"{paper(pipeline).title} ({{study}})",
                          subcategory=name, labels={"figure": name, "study": "{study}"}))
        out += [f"{S['figures_dir']}/{{study}}_{name}.{ext}" for ext in ("pdf", "csv")]
    return out


def _plan_text(wildcards) -> str:
    from wmaug.report.plan import plan, plan_text

    return plan_text(plan(CFG, CFG.get("claims")))
