# D4RL-protocol datasets (behaviour SAC -> Minari datasets), each cell's seeded sample, and the world models.


rule behaviour_run:
    """One behaviour SAC (a seed of behaviour_seeds) with evaluation checkpoints: expert = last, medium = first at
    1/3 of expert."""
    output:
        C.behaviour_candidate_path(CFG, "{env}", "{seed}"),
    log:
        f"{LOGS}/behaviour/{{env}}-seed{{seed}}.log",
    wildcard_constraints:
        seed=r"\d+",
    params:
        budget={k: S[k] for k in ("behaviour_steps", "behaviour_start_steps", "behaviour_eval_every", "behaviour_eval_episodes")},
        sac=CFG["algorithms"]["sac"],
    threads: 1
    resources:
        runtime=max(10, S["behaviour_steps"] // 3000),  # minutes, at ~50 SAC updates/s worst case
        mem_mb=4000,
    shell:
        "wmaug behaviour {CFG_ARG} --env {wildcards.env} --seed {wildcards.seed} --threads {threads} --out {output} 2> {log}"


rule behaviour:
    """The behaviour run an env's datasets come from: the strongest final policy of its seeds (docs/datasets.md)."""
    input:
        lambda wc: [C.behaviour_candidate_path(CFG, wc.env, seed) for seed in S["behaviour_seeds"]],
    output:
        C.behaviour_path(CFG, "{env}"),
    log:
        f"{LOGS}/behaviour/{{env}}-select.log",
    params:
        seeds=S["behaviour_seeds"],
    threads: 1
    resources:
        runtime=10,
        mem_mb=8000,
    shell:
        "wmaug behaviour-select {CFG_ARG} --env {wildcards.env} --candidates {input} --out {output} 2> {log}"


def dataset_inputs(wc):
    if wc.kind == "random":
        return []
    if wc.kind == "medium-expert":
        # the parts' markers, where the harness builds them (a source stands ready)
        return [m for k in ("medium", "expert") for m in C.dataset_input(CFG, wc.env, k)]
    return [C.behaviour_path(CFG, wc.env)]


rule dataset:
    """One dataset kind written as a Minari dataset; the marker JSON (checksum, provenance) is written last."""
    input:
        dataset_inputs,
    output:
        C.dataset_marker(CFG, "{env}", "{kind}"),
    log:
        f"{LOGS}/datasets/{{env}}-{{kind}}.log",
    params:
        transitions=S["dataset_transitions"],
    threads: 1
    resources:
        runtime=max(10, S["dataset_transitions"] // 2000),
        mem_mb=8000,
    shell:
        "wmaug dataset {CFG_ARG} --env {wildcards.env} --kind {wildcards.kind} --threads {threads} --out {output} 2> {log}"


def sample_inputs(wc):
    # A user-provided source replaces the built dataset (and everything upstream of it).
    return [] if C.dataset_source(CFG, wc.env, wc.dataset) else [C.dataset_marker(CFG, wc.env, wc.dataset)]


rule subsample:
    """A cell's uniform sample of n transitions, reproducible from (dataset, seed) and nested across n, with its
    normalisation stats and its rows of the source."""
    input:
        sample_inputs,
    output:
        C.sample_path(CFG, "{env}", "{dataset}", "{seed}", "{n}"),
    log:
        f"{LOGS}/samples/{{env}}-{{dataset}}-n{{n}}-seed{{seed}}.log",
    params:
        source=lambda wc: C.dataset_source(CFG, wc.env, wc.dataset),
    threads: 1
    resources:
        runtime=10,
        mem_mb=8000,
    shell:
        "wmaug subsample {CFG_ARG} --env {wildcards.env} --dataset {wildcards.dataset} --seed {wildcards.seed}"
        " --n {wildcards.n} --out {output} 2> {log}"


rule world_model:
    """Paper A's VAE world model (and the reward model of k-step rollouts) trained on one cell's sample,
    shared by every method that augments from that sample."""
    input:
        C.sample_path(CFG, "{env}", "{dataset}", "{seed}", "{n}"),
    output:
        C.world_model_path(CFG, "{env}", "{dataset}", "{seed}", "{n}"),
    log:
        f"{LOGS}/world_models/{{env}}-{{dataset}}-n{{n}}-seed{{seed}}.log",
    params:
        world_model=C.world_model_spec(CFG),
    threads: 1
    resources:
        runtime=30,
        mem_mb=4000,
    shell:
        "wmaug world-model {CFG_ARG} --env {wildcards.env} --dataset {wildcards.dataset} --seed {wildcards.seed}"
        " --n {wildcards.n} --sample {input} --threads {threads} --out {output} 2> {log}"


rule world_model_converged:
    """The converged-model control's world model (docs/methods.md, "Controls"): the same sample, trained until its
    held-out error stops falling; its epochs and held-out error are in the file and the job's log."""
    input:
        C.sample_path(CFG, "{env}", "{dataset}", "{seed}", "{n}"),
    output:
        C.world_model_path(CFG, "{env}", "{dataset}", "{seed}", "{n}", converged=True),
    log:
        f"{LOGS}/world_models/{{env}}-{{dataset}}-n{{n}}-seed{{seed}}-converged.log",
    params:
        world_model=C.converged_world_model_spec(CFG),
    threads: 1
    resources:
        runtime=240,
        mem_mb=4000,
    shell:
        "wmaug world-model {CFG_ARG} --env {wildcards.env} --dataset {wildcards.dataset} --seed {wildcards.seed}"
        " --n {wildcards.n} --sample {input} --converged --threads {threads} --out {output} 2> {log}"
