"""Bad config values stop with a message naming the key and value, before any job is planned."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import yaml

from wmaug.core import config as C
from wmaug.core.methods import PAPER_A, PAPER_B

from conftest import ROOT


def _bad(config, edit) -> str:
    cfg = copy.deepcopy(config)
    edit(cfg)
    with pytest.raises(C.ConfigError) as exc:
        C.validate(cfg, where="test.yaml")
    return str(exc.value)


def test_valid_config_expands_paper_grid(base_config):
    cfg = C.validate(base_config)
    cells = C.grid_cells(cfg, "wmaug")
    main = [c for c in cells if c["method"] in ("wm_td3bc_td3", "td3bc_td3", "td3")]
    assert len([c for c in main if c["env"] != "hopper_noisy"]) == 4 * 3 * 3 * 5
    # ablations: Fig 4 (4 methods) and Fig 5 (2) on ant-medium-replay; rate (4) and k (3) on 4 envs' medium-replay;
    # data size (6) on 4 envs x 2 datasets; stochastic: 1 new on hopper, 4 on hopper_noisy; the controls (3) on 4
    # envs' medium-replay
    assert len(cells) == (4 * 3 * 3 + 4 + 2 + 4 * 4 + 4 * 3 + 4 * 2 * 6 + 1 + 4 + 4 * 3) * 5
    assert {c["method"] for c in cells} == {r.name for r in PAPER_A}
    assert len(cells) == len({(c["env"], c["dataset"], c["method"], c["seed"]) for c in cells})
    b = C.grid_cells(cfg, "balanced_replay")
    main = [c for c in b if c["method"] in ("ours", "awac", "bcq_ft", "sac_ft", "sac")]
    assert len(main) == 3 * 4 * 5 * 4  # docs/protocol.md: 4 seeds for paper B
    assert {c["method"] for c in b} == {r.name for r in PAPER_B}
    assert len(b) == len({(c["env"], c["dataset"], c["method"], c["seed"]) for c in b})  # each cell once


def test_smoke_subset_and_overrides(base_config):
    cfg = C.validate({**base_config, "scale": "smoke"})
    b = C.grid_cells(cfg, "balanced_replay")
    assert {c["env"] for c in b} == {"halfcheetah", "hopper"} and {c["dataset"] for c in b} == {"random", "medium-expert"}
    assert cfg["algorithms"]["cql"]["hidden"] == [64, 64]  # the smoke override
    assert cfg["algorithms"]["cql"]["min_q_weight"] == 5.0  # untouched keys stay
    spec = C.cell_spec(cfg, "balanced_replay", "hopper", "random", "ours", 0)
    long = C.cell_spec(cfg, "balanced_replay", "halfcheetah", "random", "ours_long", 0)
    assert spec.config_hash == long.config_hash  # one table may hold both
    assert spec.paths.pretrained.endswith("pretrained/cql/hopper/random/block0.pt")


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda c: c["studies"]["wmaug"]["envs"].append("cheetah"), ["studies.wmaug.envs[4]", "'cheetah'", "halfcheetah"]),
        (lambda c: c["studies"]["wmaug"]["methods"].__setitem__(0, "wm_td3"), ["studies.wmaug.methods[0]", "'wm_td3'", "wm_td3bc_td3"]),
        (lambda c: c["studies"]["wmaug"]["datasets"].__setitem__(1, "medium_replay"), ["datasets[1]", "'medium_replay'", "medium-replay"]),
        (lambda c: c.__setitem__("scale", "smok"), ["scale", "'smok'", "smoke"]),
        (lambda c: c["scales"]["smoke"].__setitem__("online_steps", 0), ["scales.smoke.online_steps", "0"]),
        (lambda c: c["scales"]["paper"].__setitem__("eval_episodes", -2), ["scales.paper.eval_episodes", "-2"]),
        (lambda c: c["scales"]["quick"].__setitem__("seeds", "five"), ["scales.quick.seeds", "'five'"]),
        (lambda c: c["algorithms"]["td3"].__setitem__("actor_lr", 0), ["algorithms.td3.actor_lr", "0"]),
        (lambda c: c["algorithms"]["augmentation"].__setitem__("rate", 1.5), ["algorithms.augmentation.rate", "1.5"]),
        (lambda c: c["algorithms"]["world_model"].__setitem__("variant", "authors"), ["algorithms.world_model.variant", "'authors'"]),
        (lambda c: c["scales"]["smoke"].__setitem__("offline_samples", 10**9), ["scales.smoke.offline_samples", "exceeds"]),
        (lambda c: c["scales"]["quick"].__setitem__("behaviour_start_steps", 500), ["scales.quick.offline_samples", "behaviour_start_steps"]),
        (lambda c: c["studies"]["balanced_replay"]["methods"].append("td3"), ["studies.balanced_replay.methods[6]", "'td3'", "pipeline"]),
        (lambda c: c["studies"]["balanced_replay"]["ablations"]["fig4c_sampling"]["methods"].__setitem__(0, "ours_unifrom"),
         ["ablations.fig4c_sampling.methods[0]", "'ours_unifrom'", "ours_uniform"]),
        (lambda c: c["scales"]["smoke"]["algorithm_overrides"]["cql"].__setitem__("hidden", [0]), ["algorithms.cql.hidden", "smoke"]),
        (lambda c: c["scales"]["paper"]["algorithm_overrides"].__setitem__("cqll", {}) if "algorithm_overrides" in c["scales"]["paper"]
         else c["scales"]["paper"].__setitem__("algorithm_overrides", {"cqll": {}}), ["algorithm_overrides", "'cqll'", "cql"]),
        (lambda c: c["algorithms"]["balanced_replay"].__setitem__("online_share", 1.0), ["algorithms.balanced_replay.online_share", "1.0"]),
        (lambda c: c["scales"]["paper"].__setitem__("eval_steps", 999), ["scales.paper.eval_steps", "999", "whole episode"]),
        (lambda c: c["scales"]["paper"].__setitem__("study_seeds", {"balanced_replai": 4}), ["study_seeds", "balanced_replay"]),
        # a misspelled key or section would run with the defaults
        (lambda c: c.__setitem__("seeds_per_jobs", 2), ["top-level key 'seeds_per_jobs'", "seeds_per_job"]),
        (lambda c: c.__setitem__("algorithm", {"td3": {"actor_lr": 1e-3}}), ["top-level key 'algorithm'", "'algorithms'"]),
        (lambda c: c["algorithms"].__setitem__("tdd3", {}), ["algorithms.tdd3", "'td3'"]),
        # a grid_subset name the study does not run would silently shrink the grid
        (lambda c: c["scales"]["smoke"]["grid_subset"]["wmaug"].__setitem__("envs", ["hoppr", "ant"]),
         ["scales.smoke.grid_subset.wmaug.envs[0]", "'hoppr'", "'hopper'"]),
        (lambda c: c["scales"]["smoke"]["grid_subset"]["wmaug"].__setitem__("datasets", ["random", "expertt"]),
         ["grid_subset.wmaug.datasets[1]", "'expertt'"]),
        (lambda c: c["scales"]["evidence"]["grid_subset"]["wmaug"]["blocks"].__setitem__("fig4_int", {}),
         ["scales.evidence.grid_subset.wmaug.blocks", "block 'fig4_int'", "'fig4_init'"]),
        # a block's own names: fig4_init runs on ant only, so hopper there would keep nothing
        (lambda c: c["scales"]["evidence"]["grid_subset"]["wmaug"]["blocks"]["fig4_init"].__setitem__("envs", ["hopper"]),
         ["grid_subset.wmaug.blocks.fig4_init.envs[0]", "'hopper'", "Valid: ant"]),
        (lambda c: c["scales"]["evidence"]["grid_subset"]["balanced_replay"]["blocks"]["main"].__setitem__(
            "methods", ["ours", "our_e1"]), ["grid_subset.balanced_replay.blocks.main.methods[1]", "'our_e1'"]),
        # whole-number floats passed the schema as integers, then crashed in range()
        (lambda c: c["scales"]["smoke"].__setitem__("study_seeds", {"wmaug": 1.0}), ["scales.smoke.study_seeds.wmaug", "1.0", "write 1"]),
        (lambda c: c.__setitem__("seeds_per_job", 2.0), ["seeds_per_job", "2.0", "write 2"]),
        # the behaviour runs the datasets are selected from (docs/datasets.md)
        (lambda c: c["scales"]["paper"].__setitem__("behaviour_seeds", []), ["scales.paper.behaviour_seeds", "[]"]),
        (lambda c: c["scales"]["quick"].__setitem__("behaviour_seeds", [1, 1]), ["scales.quick.behaviour_seeds", "[1, 1]"]),
        (lambda c: c["scales"]["smoke"].__setitem__("behaviour_seeds", [-1]), ["scales.smoke.behaviour_seeds.0", "-1"]),
        # cross-field checks: the online phase must start after its random steps; Fig 5d's run is the longer one
        (lambda c: c["scales"]["smoke"].__setitem__("online_start_steps", 600),
         ["scales.smoke.online_start_steps = 600", "below online_steps = 600"]),
        (lambda c: c["scales"]["paper"].__setitem__("online_long_steps", 499_999),
         ["scales.paper.online_long_steps = 499999", "at least online_steps = 500000"]),
        (lambda c: c["scales"]["quick"].__setitem__("behaviour_start_steps", 300_000),
         ["scales.quick.behaviour_start_steps = 300000", "below behaviour_steps = 300000"]),
    ],
)
def test_bad_values_are_named(base_config, edit, expected):
    message = _bad(base_config, edit)
    for part in expected:
        assert part in message, message
    assert "test.yaml" in message


def test_an_empty_config_file_is_named(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    for scale in (None, "smoke"):
        with pytest.raises(C.ConfigError, match=f"{empty}: the config must be a mapping.*an empty file"):
            C.load_config(empty, scale)


def test_missing_dataset_file_is_named(base_config, tmp_path):
    missing = tmp_path / "nowhere" / "hopper_random-v2.hdf5"
    message = _bad(base_config, lambda c: c.__setitem__("dataset_sources", {"hopper": {"random": f"d4rl:{missing}"}}))
    assert "dataset_sources.hopper.random" in message and str(missing) in message


@pytest.mark.slow  # starts a subprocess
def test_snakemake_stops_on_bad_config_before_planning():
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "figures", "--config", "scale=paperr"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "unknown scale 'paperr'" in text and "Did you mean 'paper'" in text
    assert "Job stats" not in text  # stopped before planning any job


@pytest.mark.slow  # starts a subprocess
def test_paper_dry_run_plans_both_studies_grids():
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "figures", "--config", "scale=paper", "--quiet", "rules"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    counts = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    # Paper A: 4 envs x 3 datasets x 3 methods, plus its ablations, open questions and controls (test above), x 5
    # seeds.
    paper_a = (4 * 3 * 3 + 4 + 2 + 4 * 4 + 4 * 3 + 4 * 2 * 6 + 1 + 4 + 4 * 3) * 5
    # Paper B: 3 envs x 4 datasets x 6 methods (sac_single beside sac) x 4 seeds, plus the ablation cells not
    # already in that grid: Fig 1b 4, Fig 1c 16, Fig 4c 96, Fig 4d 88 (its N=1 cells of Fig 1c counted once), CQL
    # kept 48, long halfcheetah runs 32, alternative density ratio 48.
    paper_b = 3 * 4 * 6 * 4 + 4 + 16 + 96 + 88 + 48 + 32 + 48
    assert counts["cell"] == paper_a + paper_b
    # Samples per (env, dataset, size, seed): the main grid's 10K; 5K, 50K and 100K of the data sweep's
    # 4 envs x 2 datasets; Fig 5's 50K on ant-medium-replay; hopper_noisy's 10K. World models: the same
    # without Fig 5's 50K (no augmentation there).
    assert counts["subsample"] == 4 * 3 * 5 + 3 * 4 * 2 * 5 + 5 + 5
    assert counts["world_model"] == 4 * 3 * 5 + 3 * 4 * 2 * 5 + 5
    # hopper_noisy adds a behaviour policy and its medium-replay dataset; each env's behaviour SAC runs once per
    # behaviour seed (3), and one selection job per env picks the run its datasets come from.
    assert counts["behaviour_run"] == (4 + 1) * 3 and counts["behaviour"] == 4 + 1
    assert counts["dataset"] == 4 * 5 + 1
    # One held-out error per world model of the main grid; Fig 5's traces on ant-medium-replay.
    assert counts["world_model_error"] == 4 * 3 * 5 and counts["critic_trace"] == 1
    # The converged-model control: one model per env's medium-replay and seed, each with its held-out error.
    assert counts["world_model_converged"] == counts["world_model_error_converged"] == 4 * 5
    # One block of 5 agents per (env, dataset, seed) for CQL, AWAC and BCQ; FQE for halfcheetah's 4 datasets.
    assert counts["pretrain"] == 3 * (3 * 4 * 4) + 4 * 4
    assert counts["likelihood_shift"] == 1
    # One report per study, then one claims job that reads both.
    assert counts["report_wmaug"] == counts["report_balanced_replay"] == counts["claims"] == 1


def test_truncated_d4rl_file_is_named_before_compute(base_config, tmp_path, hopper_random):
    import h5py

    path = tmp_path / "hopper_random-v2.hdf5"
    with h5py.File(path, "w") as f:
        for key in ("observations", "actions", "rewards", "terminals", "timeouts"):
            f[key] = getattr(hopper_random, key)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    message = _bad(base_config, lambda c: c.__setitem__("dataset_sources", {"hopper": {"random": f"d4rl:{path}"}}))
    assert "dataset_sources.hopper.random" in message and str(path) in message


def test_wrong_shape_d4rl_file_is_named(base_config, tmp_path, hopper_random):
    import h5py

    path = tmp_path / "hopper_random-v2.hdf5"
    with h5py.File(path, "w") as f:
        for key in ("observations", "actions", "rewards", "terminals", "timeouts"):
            f[key] = getattr(hopper_random, key)
    # hopper's 11-dim states given as halfcheetah data (17-dim)
    message = _bad(base_config, lambda c: c.__setitem__("dataset_sources", {"halfcheetah": {"random": f"d4rl:{path}"}}))
    assert "dataset_sources.halfcheetah.random" in message and "11" in message and "17" in message


def test_config_hash_is_shared_by_methods_and_seeds_but_not_scales(base_config):
    cfg = C.validate(base_config)
    hashes = {C.cell_spec(cfg, **cell).config_hash for cell in C.grid_cells(cfg, "wmaug")}
    assert len(hashes) == 1
    cfg["scale"] = "smoke"
    assert C.cell_spec(cfg, "wmaug", "ant", "random", "td3", 0).config_hash not in hashes


@pytest.mark.slow  # starts a subprocess
def test_bad_claims_file_stops_snakemake_before_planning(tmp_path):
    """A typo in config/claims.yaml is named (file, claim, key, closest valid name) before any job is planned."""
    import shutil

    for name in ("Snakefile", "rules", "config"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    claims = tmp_path / "config" / "claims.yaml"
    claims.write_text(claims.read_text().replace("x: {method: wm_td3bc_td3}", "x: {method: wm_td3bc}", 1))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "figures", "--config", "scale=smoke"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "config/claims.yaml: claim A1.checks[0].x.method: unknown method 'wm_td3bc'" in text
    assert "Did you mean 'wm_td3bc_td3'" in text and "Job stats" not in text


def _job_resources(dry_run_output: str) -> dict[str, list[dict[str, str]]]:
    """rule -> the resources of each of its jobs, read off `snakemake -n`'s job listing."""
    jobs, rule = {}, None
    for line in dry_run_output.splitlines():
        line = line.strip()
        if line.startswith("rule ") and line.endswith(":"):
            rule = line[5:-1]
        elif line.startswith("resources:") and rule:
            pairs = (kv.split("=", 1) for kv in line[len("resources:"):].split(", "))
            jobs.setdefault(rule, []).append({k.strip(): v.strip() for k, v in pairs})
    return jobs


@pytest.mark.slow  # starts a subprocess
def test_slurm_profile_dry_run_asks_each_rule_for_its_resources():
    """The SLURM profile with the real executor plugin, on a machine without SLURM: the paper-scale plan goes
    through, every job carries the account and a partition to edit, cells and pre-training ask for 2 CPUs and a
    GPU on the GPU partition, the runtimes are the rules' own (paper A's cells: (offline iterations + online steps)
    / 6000 minutes)."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--profile", "profiles/slurm", "figures",
                          "--config", "scale=paper"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    jobs = _job_resources(out.stdout + out.stderr)
    assert {"cell", "pretrain", "behaviour_run", "behaviour", "dataset", "world_model", "report_wmaug",
            "claims"} <= set(jobs)
    training = jobs["cell"] + jobs["pretrain"]
    for rule, listed in jobs.items():
        for res in listed:
            partition = "EDIT_ME_GPU_PARTITION" if rule in ("cell", "pretrain") else "EDIT_ME_PARTITION"
            assert res["slurm_account"] == "EDIT_ME_ACCOUNT" and res["slurm_partition"] == partition, rule
    assert all(r["cpus_per_task"] == "2" and r["gpu"] == "1" for r in training)
    assert all(r["cpus_per_task"] == "2" and "gpu" not in r for r in jobs["behaviour_run"])
    assert not any("gpu" in r for r in jobs["report_wmaug"] + jobs["dataset"])
    assert all(r["mem_mb"] == "16000" for r in jobs["pretrain"] + jobs["report_wmaug"])
    assert {r["runtime"] for r in jobs["cell"]} >= {str((200_000 + 500_000) // 6000)}
    assert len(jobs["cell"]) == 675 + 620
    # The executor plugin submits a rule's ready jobs as one array with the FIRST job's runtime, memory and
    # partition (snakemake-executor-plugin-slurm 2.8, run_array_jobs). Arrays are only sound for a rule whose jobs
    # all ask the same: cells do not (their runtimes follow their budgets), so an array would cut the longer short.
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    arrayed = [r.strip() for r in str(profile.get("slurm-array-jobs", "")).replace(";", ",").split(",") if r.strip()]
    assert "all" not in arrayed
    sbatch_keys = ("runtime", "mem_mb", "mem_mb_per_cpu", "cpus_per_task", "gpu", "gres", "slurm_partition",
                   "slurm_account", "constraint", "qos", "nodes", "tasks", "slurm_extra")
    for rule in arrayed:
        asks = {tuple(res.get(k) for k in sbatch_keys) for res in jobs.get(rule, [])}
        assert len(asks) <= 1, f"profiles/slurm: slurm-array-jobs has {rule!r}, whose jobs ask for {len(asks)} " \
                               f"different sbatch resources: {sorted(asks)[:3]}"


def _leaves(obj, path=()):
    """Every (path, value) of a nested config, containers included."""
    yield path, obj
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        yield from _leaves(v, path + (k,))


def _set(cfg, path, value) -> None:
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


WRONG_VALUES = ["", "x", "1e3", -1, 0, -0.5, 1.5, 10**12, 2.5e-300, float("nan"), float("inf"), True, None, [], [1, "a"],
                {}, {"a": 1}, [[]], -(10**12)]


def test_config_fuzz_never_gets_past_validation_into_a_traceback(base_config):
    """600 seeded random edits: one value anywhere in the config (or a key added or removed) replaced by a value
    of another type or out of range. validate() either accepts the result or raises ConfigError naming a key;
    never another exception."""
    import random

    rng = random.Random(0)
    paths = [p for p, _ in _leaves(base_config) if p]
    accepted = rejected = 0
    for trial in range(600):
        cfg = copy.deepcopy(base_config)
        path = rng.choice(paths)
        kind = rng.random()
        try:
            if kind < 0.8:
                _set(cfg, path, copy.deepcopy(rng.choice(WRONG_VALUES)))
            elif kind < 0.9:  # drop a key or list entry
                node = cfg
                for k in path[:-1]:
                    node = node[k]
                del node[path[-1]]
            else:  # an unknown key beside it
                node = cfg
                for k in path[:-1]:
                    node = node[k]
                if isinstance(node, dict):
                    node[f"unknown_{trial}"] = 1
        except (KeyError, IndexError, TypeError):
            continue
        try:
            C.validate(cfg, where="fuzz.yaml", check_sources=False)
            accepted += 1
        except C.ConfigError as exc:
            assert "fuzz.yaml" in str(exc), f"{path}: {exc}"
            rejected += 1
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"edit of {'.'.join(map(str, path))} (trial {trial}) raised {type(exc).__name__}: {exc}")
    assert rejected > 400  # nearly every such edit is an error the user must hear about


# ---- paper B's settings as the paper gives them (docs/protocol.md, paper B) ------------------------------------
def test_awac_pretrains_for_its_own_examples_budget_and_batch(base_config):
    """Paper B runs AWAC "without any modification to hyperparameters" (App. D.1): rlkit's example pre-trains for
    50,000 updates (q_num_pretrain2_steps) at its offline batch of 128, not CQL's 1M updates, and fine-tunes at
    1,024."""
    cfg = C.validate({**base_config, "scale": "paper"})
    awac = C.pretrain_spec(cfg, "awac", "hopper", "medium", 0)
    cql = C.pretrain_spec(cfg, "cql", "hopper", "medium", 0)
    assert awac.iterations == 50_000 and cql.iterations == 1_000_000
    assert awac.algorithm["pretrain_batch_size"] == 128 and awac.algorithm["batch_size"] == 1024


def test_cql_on_halfcheetah_medium_expert_has_three_hidden_layers_and_its_heirs_match(base_config):
    """App. D.1: 2-layer MLPs, "except for halfcheetah-medium-expert task where we found that 3-layer MLPs is more
    effective": the CQL block, the FQE critics of its policies and the ensemble fine-tuned from it all read the
    override; other tasks keep 2 layers."""
    cfg = C.validate({**base_config, "scale": "paper"})
    for env, kind, hidden in (("halfcheetah", "medium-expert", [256, 256, 256]), ("halfcheetah", "medium", [256, 256]),
                              ("hopper", "medium-expert", [256, 256])):
        assert C.pretrain_spec(cfg, "cql", env, kind, 0).algorithm["hidden"] == hidden
        assert C.pretrain_spec(cfg, "fqe", env, kind, 0).cql["hidden"] == hidden
        cell = C.cell_spec(cfg, "balanced_replay", env, kind, "ours", 0)
        assert C.cql_for_task(cell.algorithms["cql"], cell.cell.env, cell.cell.dataset)["hidden"] == hidden
    # a fine-tuning cell keeps the whole section: every task of the study shares one config hash (one table)
    hashes = {C.cell_spec(cfg, "balanced_replay", e, d, "ours", 0).config_hash
              for e in ("halfcheetah", "hopper") for d in ("medium", "medium-expert")}
    assert len(hashes) == 1


def test_a_cql_task_override_names_a_real_task(base_config):
    cfg = copy.deepcopy(base_config)
    cfg["algorithms"]["cql"]["task_overrides"] = {"halfcheeta/medium-expert": {"hidden": [8]}}
    with pytest.raises(C.ConfigError, match="algorithms.cql.task_overrides.halfcheeta/medium-expert.*halfcheetah"):
        C.validate(cfg)



def test_a_grid_subset_keeps_only_the_blocks_and_methods_it_names(base_config):
    """The evidence scale: paper A's main grid on hopper and Fig 4a's two actor-only methods on ant-medium-replay;
    paper B's blocks that claims B3, B4 and B7 read, on halfcheetah random and medium-expert. Blocks left out stay,
    empty (their figures say "not run")."""
    cfg = C.load_config(ROOT / "config" / "config.yaml", "evidence")
    a, b = C.grid_blocks(cfg, "wmaug"), C.grid_blocks(cfg, "balanced_replay")
    assert a["main"] == {"envs": ["hopper"], "datasets": ["medium-expert", "medium-replay", "random"],
                         "methods": ["wm_td3bc_td3", "td3bc_td3", "td3"]}
    assert a["fig4_init"] == {"envs": ["ant"], "datasets": ["medium-replay"],
                              "methods": ["wm_actor_only", "td3bc_actor_only"]}
    assert a["sweep_rate"] == a["fig5_critics"] == {"envs": [], "datasets": [], "methods": []}
    assert b["main"]["methods"] == ["ours"] and b["main"]["datasets"] == ["random", "medium-expert"]
    assert {n for n, blk in b.items() if blk["methods"]} == {"main", "fig1c_q_init", "fig4c_sampling", "fig4d_ensemble_size"}
    assert b["fig1c_q_init"]["envs"] == ["halfcheetah"]
    cells = {(c["env"], c["dataset"], c["method"]) for c in C.grid_cells(cfg, "balanced_replay")}
    assert len(cells) == 2 * 6  # two tasks x ours, ours_e1, fqe_e1, ours_uniform, ours_online_only, ours_e2


def _dry_run_jobs(cwd, target: str) -> tuple[dict[str, list[str]], str]:
    """rule -> the output lines of its jobs in `snakemake -n` (smoke scale) for one target; and the whole text."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", target, "--config", "scale=smoke"], cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    jobs, rule = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split(" ", 1)[1][:-1]
        elif line.startswith("output:") and rule:
            jobs.setdefault(rule, []).append(line[len("output:"):].strip())
    return jobs, text


@pytest.mark.slow  # starts Snakemake three times (dry runs)
def test_tables_of_a_partial_run_do_not_stop_its_missing_cells(tmp_path):
    """Tracked tables of a partial run (the evidence scale's) exist while some cells do not. Snakemake alone would
    call such a report done (it skips the missing inputs of a job whose outputs exist); the report's pending-inputs
    file puts it out of date, so the missing cells are planned. Once every input exists, a finished report stays
    finished."""
    import os
    import shutil

    for name in ("Snakefile", "rules", "config"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, tmp_path / name)
    target = "results/smoke/wmaug/scores.csv"
    jobs, _ = _dry_run_jobs(tmp_path, target)
    report_outputs = [p.strip() for p in jobs["report_wmaug"][0].split(",")]
    assert target in report_outputs and len(jobs["cell"]) > 1
    for path in report_outputs:  # the tables and figures of a run that did not finish, as a clone finds them
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("partial\n")
    pending = tmp_path / ".snakemake/wmaug/pending/results_smoke-wmaug.txt"
    if pending.exists():
        os.utime(pending, (0, 0))  # older than the tables, as after `wmaug regenerate`
    jobs_after, text = _dry_run_jobs(tmp_path, target)
    assert "Nothing to be done" not in text
    assert len(jobs_after.get("cell", [])) == len(jobs["cell"]) and "report_wmaug" in jobs_after
    cell = jobs["cell"][0].split(",")[-1].strip()  # a summary.json the pending file names
    assert cell.endswith("summary.json") and cell in pending.read_text().split()
    for path in pending.read_text().split():  # every input there, with its job's other outputs (a dry run reads
        made = tmp_path / path                # only names and dates)
        made.parent.mkdir(parents=True, exist_ok=True)
        for name in ("curve.csv", "model.pt", made.name) if made.name == "summary.json" else (made.name,):
            (made.parent / name).write_text("{}\n")
            os.utime(made.parent / name, (1e9, 1e9))  # all from one moment: none newer than a job that reads it
    for path in report_outputs:
        os.utime(tmp_path / path)  # the report written after them
    _, text = _dry_run_jobs(tmp_path, target)
    assert "Nothing to be done" in text
    assert pending.read_text() == "" and pending.stat().st_mtime == 0
