# Paper B's offline stage: blocks of batched agents (CQL, AWAC, BCQ) and FQE critics, shared by its methods.


rule pretrain:
    """One block of agents (the five of one fine-tuning seed), trained offline as one batched learner."""
    input:
        pretrain_inputs,
    output:
        C.pretrained_path(CFG, "{algo}", "{env}", "{dataset}", "{block}"),
    log:
        f"{LOGS}/pretrain/{{algo}}-{{env}}-{{dataset}}-block{{block}}.log",
    wildcard_constraints:
        algo="cql|awac|bcq|fqe",
        block=r"\d+",
    params:
        spec=lambda wc: json.dumps(pretrain_spec(wc).to_json(), sort_keys=True),
    threads: 1
    resources:
        runtime=max(10, S["pretrain_iterations"] // 1000),  # minutes; about 20 batched CQL updates/s on one core
        mem_mb=16000,
    shell:
        "wmaug pretrain --spec-json {params.spec:q} --out {output} --threads {threads} 2> {log}"


rule likelihood_shift:
    """Fig 1a: a VAE over (s, a) of halfcheetah-random; log-likelihood of held-out offline vs CQL-online samples."""
    input:
        C.dataset_input(CFG, "halfcheetah", "random"),
        agents=C.pretrained_path(CFG, "cql", "halfcheetah", "random", 0),
    output:
        f"{S['results_dir']}/balanced_replay/fig1a_loglik.csv",
    log:
        f"{LOGS}/analysis/likelihood_shift.log",
    threads: 1
    resources:
        runtime=60,
        mem_mb=8000,
    shell:
        "wmaug likelihood-shift {CFG_ARG} --env halfcheetah --dataset random --agents {input.agents}"
        " --threads {threads} --out {output} 2> {log}"
