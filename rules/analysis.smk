# Paper A's analyses beside the cells: each world model's held-out one-step error, and Fig 5's critic traces.


rule world_model_error:
    """Held-out one-step error of one world model, overall, by distance from its training states and by
    state dimension."""
    input:
        model=C.world_model_path(CFG, "{env}", "{dataset}", "{seed}"),
        sample=C.sample_path(CFG, "{env}", "{dataset}", "{seed}"),
        data=lambda wc: C.dataset_input(CFG, wc.env, wc.dataset),
    output:
        **C.world_model_error_paths(CFG, "{study}", "{env}", "{dataset}", "{seed}"),
    log:
        f"{LOGS}/analysis/{{study}}/world_model_error-{{env}}-{{dataset}}-seed{{seed}}.log",
    wildcard_constraints:
        study="|".join(_wm_study()) or "no_study",
    threads: 1
    resources:
        runtime=15,
        mem_mb=8000,
    shell:
        "wmaug world-model-error {CFG_ARG} --env {wildcards.env} --dataset {wildcards.dataset}"
        " --seed {wildcards.seed} --world-model {input.model} --sample {input.sample}"
        " --out-dir $(dirname {output.summary}) --threads {threads} 2> {log}"


rule world_model_error_converged:
    """The same held-out error of a converged-model control's world model (the same held-out rows as its
    protocol-budget twin's)."""
    input:
        model=C.world_model_path(CFG, "{env}", "{dataset}", "{seed}", converged=True),
        sample=C.sample_path(CFG, "{env}", "{dataset}", "{seed}"),
        data=lambda wc: C.dataset_input(CFG, wc.env, wc.dataset),
    output:
        **C.world_model_error_paths(CFG, "{study}", "{env}", "{dataset}", "{seed}", converged=True),
    log:
        f"{LOGS}/analysis/{{study}}/world_model_error_converged-{{env}}-{{dataset}}-seed{{seed}}.log",
    wildcard_constraints:
        study="|".join(_wm_study()) or "no_study",
    threads: 1
    resources:
        runtime=15,
        mem_mb=8000,
    shell:
        "wmaug world-model-error {CFG_ARG} --env {wildcards.env} --dataset {wildcards.dataset}"
        " --seed {wildcards.seed} --world-model {input.model} --sample {input.sample}"
        " --out-dir $(dirname {output.summary}) --threads {threads} 2> {log}"


rule critic_trace:
    """Fig 5: Q(s, a) of the pre-trained and online critics along one episode of the expert dataset."""
    input:
        cells=lambda wc: [f"{d}/summary.json" for d in _critic_trace_job(wc)["cells"]],
        expert=lambda wc: C.dataset_input(CFG, wc.env, "expert"),
    output:
        C.critic_trace_path(CFG, "{study}", "{env}", "{dataset}"),
    log:
        f"{LOGS}/analysis/{{study}}/critic_trace-{{env}}-{{dataset}}.log",
    wildcard_constraints:
        study="|".join(_wm_study()) or "no_study",
    params:
        cells=lambda wc: " ".join(_critic_trace_job(wc)["cells"]),
    threads: 1
    resources:
        runtime=10,
        mem_mb=4000,
    shell:
        "wmaug critic-trace {CFG_ARG} --env {wildcards.env} --cells {params.cells} --out {output} 2> {log}"
