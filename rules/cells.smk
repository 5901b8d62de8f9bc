from types import SimpleNamespace

# One training cell per (study, env, dataset, method, seed): `wmaug cell` with the resolved spec.


# `--spec-json` holds one spec, or the list of a seed group's specs; `--out` one folder per seed.
CELL_SHELL = "wmaug cell --spec-json {params.spec:q} --out {params.out} --threads {threads} 2> {log}"
CELL_DIR = C.cell_dir(CFG, "{study}", "{env}", "{dataset}", "{method}", "{seed}")
# Paper A's studies whose seeds run several per job (config `seeds_per_job`): one batched TD3, a folder per seed.
SEED_GROUPS = C.seed_groups(CFG)
UNGROUPED = [s for s in CFG["studies"] if s not in SEED_GROUPS]


rule cell:
    input:
        cell_inputs,
    output:
        curve=f"{CELL_DIR}/curve.csv",
        model=f"{CELL_DIR}/model.pt",
        summary=f"{CELL_DIR}/summary.json",
    wildcard_constraints:
        study="|".join(UNGROUPED) or "(?!)",
    log:
        f"{LOGS}/cells/{{study}}/{{env}}-{{dataset}}-{{method}}-seed{{seed}}.log",
    params:
        # The resolved spec is a param: changing any number of a cell re-runs exactly that cell.
        spec=lambda wc: json.dumps(cell_spec(wc).to_json(), sort_keys=True),
        out=CELL_DIR,
    threads: 1
    resources:
        runtime=lambda wc: cell_runtime(wc),
        mem_mb=6000,
    shell:
        CELL_SHELL


# One rule per seed group (rule names: cell_<study>_seeds<first>_<last>; a cluster profile gives them the resources
# it gives `cell`). Its outputs are the group's seed folders, so the aggregation reads them like any cell's.
for _study, _groups in SEED_GROUPS.items():
    for _seeds in _groups:
        _dirs = [C.cell_dir(CFG, _study, "{env}", "{dataset}", "{method}", seed) for seed in _seeds]

        rule:
            name:
                C.seed_group_rule(_study, _seeds)
            input:
                lambda wc, study=_study, seeds=_seeds: sorted({
                    path for seed in seeds for path in cell_inputs(seed_wildcards(wc, study, seed))})
            output:
                [f"{d}/{name}" for d in _dirs for name in ("curve.csv", "model.pt", "summary.json")],
            log:
                f"{LOGS}/cells/{_study}/{{env}}-{{dataset}}-{{method}}-seeds{_seeds[0]}-{_seeds[-1]}.log",
            params:
                spec=lambda wc, study=_study, seeds=_seeds: json.dumps(
                    [C.cell_spec(CFG, study, wc.env, wc.dataset, wc.method, seed).to_json() for seed in seeds],
                    sort_keys=True),
                out=" ".join(_dirs),
            threads: 1
            resources:
                runtime=lambda wc, study=_study, seeds=_seeds: len(seeds) * cell_runtime(
                    seed_wildcards(wc, study, seeds[0])),
                mem_mb=6000 + 1000 * (len(_seeds) - 1),
            shell:
                CELL_SHELL
