# One training cell per (study, env, dataset, method, seed): `wmaug cell` with the resolved spec.


def cell_spec(wc):
    return C.cell_spec(CFG, wc.study, wc.env, wc.dataset, wc.method, int(wc.seed))


def cell_inputs(wc):
    spec = cell_spec(wc)
    paths, recipe = spec["paths"], spec["recipe"]
    if recipe["pipeline"] == "balanced_replay":
        data = C.dataset_input(CFG, wc.env, wc.dataset) if recipe["sampling"] != "online_only" else []
        return data + ([paths["pretrained"]] if paths["pretrained"] else [])
    return [p for p in (paths["sample"], paths["world_model"]) if p]


def cell_runtime(wc):
    """Minutes to ask a cluster for: paper A's TD3 at about 100 steps/s, paper B's 5-member ensembles at about 17."""
    recipe = cell_spec(wc)["recipe"]
    if recipe["pipeline"] == "balanced_replay":
        return max(10, S["finetune_long_steps" if recipe["long"] else "finetune_steps"] // 1000)
    online = S["online_long_steps"] if recipe["long"] else S["online_steps"]
    return max(10, (S["offline_iterations"] + online) // 6000)


CELL_DIR = C.cell_dir(CFG, "{study}", "{env}", "{dataset}", "{method}", "{seed}")


rule cell:
    input:
        cell_inputs,
    output:
        curve=f"{CELL_DIR}/curve.csv",
        model=f"{CELL_DIR}/model.pt",
        summary=f"{CELL_DIR}/summary.json",
    log:
        f"{LOGS}/cells/{{study}}/{{env}}-{{dataset}}-{{method}}-seed{{seed}}.log",
    params:
        # The resolved spec is a param: changing any number of a cell re-runs exactly that cell.
        spec=lambda wc: json.dumps(cell_spec(wc), sort_keys=True),
        out=CELL_DIR,
    threads: 1
    resources:
        runtime=lambda wc: cell_runtime(wc),
        mem_mb=6000,
    shell:
        "wmaug cell --spec-json {params.spec:q} --out {params.out} --threads {threads} 2> {log}"


def study_summaries(study):
    return [f"{C.cell_dir(CFG, **cell)}/summary.json" for cell in C.grid_cells(CFG, study)]
