# wmaug: every env x dataset x method x seed cell of the studies in config/config.yaml, their datasets,
# world models, aggregation and figures.
#   snakemake --cores 8 figures                         # paper scale (the default)
#   snakemake --cores 2 figures --config scale=smoke    # the whole DAG at toy budgets

import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)
from wmaug.core import config as C
from wmaug.core.papers import PAPERS, paper, study_paper
from wmaug.core.envs import DATASET_KINDS
from wmaug.core.envs import ENV_SPECS
from wmaug.report import claims as C_claims
from wmaug.report.claim_targets import claim_cell_inputs


configfile: "config/config.yaml"


# Checked before any job is planned: unknown names, bad types and non-positive budgets stop here.
CFG = C.validate(config, where="config/config.yaml (with --config overrides)")
C.check_samples_current(CFG)  # a sample drawn from a source the config no longer names stops the run here
SCALE = CFG["scale"]

# SLURM jobs that a stopped Snakemake left queued or running here would be submitted a second time beside themselves:
# stop first, naming them (wmaug/core/cluster.py). Not in a job's own Snakemake, which is one of those jobs.
if not (getattr(workflow, "remote_exec", False) or getattr(workflow, "subprocess_exec", False)):
    from wmaug.core.cluster import LiveJobsError, live_jobs, live_jobs_message

    _live = live_jobs(Path.cwd())
    if _live:
        raise LiveJobsError(live_jobs_message(_live, Path.cwd()))
S = C.scale_cfg(CFG)

# The tracking backend reaches `wmaug cell` through its environment, not its spec or command: choosing one re-runs no
# cell. The config decides (a missing package stops the run here, before any job); jobs elsewhere re-read this file.
from wmaug.core.tracking import TRACKING_DIR_ENV, TRACKING_ENV, config_tracking

_tracking = config_tracking(CFG)
os.environ[TRACKING_ENV], os.environ[TRACKING_DIR_ENV] = _tracking.backend, _tracking.dir

# The CLI reads the same effective config (including --config overrides) from this file.
_cfg_text = json.dumps(CFG, sort_keys=True)
CONFIG_JSON = f".snakemake/wmaug/config-{hashlib.sha256(_cfg_text.encode()).hexdigest()[:12]}.json"
Path(CONFIG_JSON).parent.mkdir(parents=True, exist_ok=True)
if not Path(CONFIG_JSON).exists():
    Path(CONFIG_JSON).write_text(_cfg_text)

CFG_ARG = f"--config {CONFIG_JSON}"
LOGS = f"logs/{SCALE}"

# The claims file is checked here too, so that a typo in it stops the run before any compute.
CLAIMS_FILE = "config/claims.yaml"
_claim_ids = [c.id for c in C_claims.load_claims(CLAIMS_FILE).claims]
for _id in CFG.get("claims") or []:  # `--config claims=[A2,B3]`: named claims only, checked before any job
    if _id not in _claim_ids:
        raise C.ConfigError(C.unknown_name_message("claim", _id, _claim_ids, "--config claims"))

# `snakemake --report`: its first page is the claims table once the claims rule has written it.
_claims_page = Path(S["figures_dir"]) / "claims.rst"


report: str(_claims_page) if _claims_page.is_file() else "rules/report/workflow.rst"


wildcard_constraints:
    env="|".join(ENV_SPECS),
    kind="|".join(k.replace("-", "\\-") for k in DATASET_KINDS),
    dataset="|".join(k.replace("-", "\\-") for k in C.dataset_kinds(CFG)),  # with the kinds only a source provides
    seed=r"\d+",
    n=r"\d+",
    method=r"[a-z0-9_]+",
    study=r"[a-z0-9_]+",


include: "rules/common.smk"
include: "rules/datasets.smk"
include: "rules/pretrain.smk"
include: "rules/cells.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"


rule figures:
    """Every figure of every study in the config (and the CSVs of the numbers plotted), and the claims' verdicts;
    with `--config claims=[A2,B3]`, only what those claims need and their verdict pages."""
    input:
        figures_inputs,
    default_target: True
