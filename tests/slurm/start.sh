#!/usr/bin/env bash
# Start a throw-away one-node SLURM cluster on this machine (Debian 12, root).
#
#   eval "$(sudo tests/slurm/start.sh)"   # or: eval "$(tests/slurm/start.sh)" as root
#   sbatch --wrap 'hostname'
#   tests/slurm/stop.sh
#
# Progress goes to stderr; stdout carries only the `export SLURM_CONF=...` line.
# Environment:
#   WMAUG_SLURM_DIR      directory owned by this script (default /tmp/wmaug-slurm)
#   WMAUG_SLURM_TIMEOUT  seconds to wait for the node to become idle (default 60)
#   WMAUG_SLURM_CTLD_PORT / WMAUG_SLURM_SLURMD_PORT  (default 6817 / 6818)
#   WMAUG_SLURM_KEEP_STATE=1  keep the controller state (jobs, job ids) of a previous run
set -euo pipefail

DIR=${WMAUG_SLURM_DIR:-/tmp/wmaug-slurm}
TIMEOUT=${WMAUG_SLURM_TIMEOUT:-60}
CTLD_PORT=${WMAUG_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${WMAUG_SLURM_SLURMD_PORT:-6818}
CONF="$DIR/etc/slurm.conf"
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export SLURM_CONF="$CONF"

t0=$(date +%s)
log() { echo "[wmaug-slurm] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, munged, slurmd need it)"

pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- 0. already running? then just report ------------------------------------
if pid_alive "$DIR/run/slurmctld.pid" && pid_alive "$DIR/run/slurmd.pid"; then
    log "cluster already running (pids $(cat "$DIR/run/slurmctld.pid") $(cat "$DIR/run/slurmd.pid"))"
    echo "export SLURM_CONF=$CONF"
    exit 0
fi

mkdir -p "$DIR"/{etc,state,spool,log,run}

# --- 1. packages ---------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge with apt-get"
    # Keep the packages' init scripts from starting daemons with the system config.
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends slurm-wlm munge >"$DIR/log/apt.log" 2>&1; then
        apt-get update -q >>"$DIR/log/apt.log" 2>&1 || true
        apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$DIR/log/apt.log" 2>&1 \
            || { tail -n 20 "$DIR/log/apt.log" >&2; die "apt-get install failed"; }
    fi
    [[ $made_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
    log "installed: $(dpkg-query -W -f='${Package} ${Version}  ' slurmctld slurmd slurm-client munge)"
else
    log "slurm already installed: $(slurmctld -V)"
fi

# --- 2. munge ------------------------------------------------------------------
MUNGE_KEY=/etc/munge/munge.key
if [[ ! -s $MUNGE_KEY ]]; then
    log "creating $MUNGE_KEY"
    install -d -m 0700 -o munge -g munge /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile="$MUNGE_KEY" --force
    else
        dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
    fi
fi
# munged refuses a key that is readable by others or not owned by its user.
chown munge:munge "$MUNGE_KEY"
chmod 0400 "$MUNGE_KEY"
install -d -m 0755 -o munge -g munge /run/munge
install -d -m 0700 -o munge -g munge /var/lib/munge /var/log/munge

# $DIR/run/munged.started holds the pid of a munged that start.sh started;
# stop.sh stops that pid and nothing else.
MUNGED_PIDFILE=/run/munge/munged.pid
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [[ -s "$DIR/run/munged.started" && -s $MUNGED_PIDFILE ]] \
        && [[ $(cat "$DIR/run/munged.started") == "$(cat $MUNGED_PIDFILE)" ]]; then
        log "munged started by an earlier start.sh still running, reusing it"
    else
        rm -f "$DIR/run/munged.started"
        log "munged already running, reusing it (stop.sh will leave it alone)"
    fi
else
    log "starting munged"
    runuser -u munge -- munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
    munge -n | unmunge >/dev/null || die "munge round trip failed"
    cat "$MUNGED_PIDFILE" >"$DIR/run/munged.started"
fi

# --- 3. slurm.conf -------------------------------------------------------------
HOST=$(hostname -s)   # slurmctld/slurmd compare this to SlurmctldHost/NodeName
CPUS=$(nproc --all)
MEM_TOTAL=$(free -m | awk '/^Mem:/ {print $2}')
REAL_MEM=$(( MEM_TOTAL * 95 / 100 ))            # a bit under, or slurmd drains the node
DEF_MEM=$(( REAL_MEM / CPUS ))

if [[ ${WMAUG_SLURM_KEEP_STATE:-0} != 1 ]]; then
    rm -rf "${DIR:?}"/state/* "${DIR:?}"/spool/* "${DIR:?}"/log/jobcomp.log   # job ids restart at 1
fi
chmod 0755 "$DIR"/{state,spool,log,run}

cat >"$CONF" <<EOF
# Written by tests/slurm/start.sh -- throw-away single-node test cluster.
ClusterName=wmaug-test
SlurmctldHost=${HOST}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true

StateSaveLocation=${DIR}/state
SlurmdSpoolDir=${DIR}/spool
SlurmctldPidFile=${DIR}/run/slurmctld.pid
SlurmdPidFile=${DIR}/run/slurmd.pid
SlurmctldLogFile=${DIR}/log/slurmctld.log
SlurmdLogFile=${DIR}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups in this container.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none

SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=${DEF_MEM}
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
# Keep finished jobs visible in squeue/scontrol for an hour (default 300 s):
# without slurmdbd this is the only place job state lives.
MinJobAge=3600
JobRequeue=1

# Accounting: there is no slurmdbd, so AccountingStorageType must be none and
# plain 'sacct' has no history.  The job-completion log below is read by
# 'sacct --completion' (-c) in Slurm 22.05.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc=${DIR}/log/jobcomp.log

NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${REAL_MEM} State=UNKNOWN
PartitionName=cpu Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=${HOST} Default=NO MaxTime=INFINITE State=UP
EOF
log "wrote $CONF (node $HOST, CPUs=$CPUS, RealMemory=$REAL_MEM MB)"

# Snakemake's jobstep plugin drops every SLURM_* variable but the job's identity before its nested `srun`
# (snakemake-executor-plugin-slurm-jobstep 0.6.1), SLURM_CONF included: inside a job, srun then looks for
# /etc/slurm/slurm.conf. Link it there unless a real one exists; stop.sh removes the link.
if [[ ! -e /etc/slurm/slurm.conf || -L /etc/slurm/slurm.conf ]]; then
    mkdir -p /etc/slurm
    ln -sfn "$CONF" /etc/slurm/slurm.conf
    log "linked /etc/slurm/slurm.conf -> $CONF (for srun inside jobs)"
fi

# --- 4. daemons ----------------------------------------------------------------
for d in slurmctld slurmd; do
    if pid_alive "$DIR/run/$d.pid"; then
        log "$d still running from a previous start (pid $(cat "$DIR/run/$d.pid")), stopping it"
        kill "$(cat "$DIR/run/$d.pid")" || true
        sleep 1
    fi
done
log "starting slurmctld"
slurmctld -f "$CONF" $([[ ${WMAUG_SLURM_KEEP_STATE:-0} == 1 ]] || echo -c) \
    || die "slurmctld failed, see $DIR/log/slurmctld.log"
log "starting slurmd"
slurmd -f "$CONF" || die "slurmd failed, see $DIR/log/slurmd.log"

# --- 5. wait for the node --------------------------------------------------------
state=""
for _ in $(seq $(( TIMEOUT * 2 ))); do
    state=$(sinfo -h -n "$HOST" -p cpu -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 0.5
done
if [[ $state != idle ]]; then
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    die "node $HOST not idle after ${TIMEOUT}s (state: '${state}')"
fi
sinfo >&2
log "cluster up in $(( $(date +%s) - t0 ))s; daemons: slurmctld $(cat "$DIR/run/slurmctld.pid"), slurmd $(cat "$DIR/run/slurmd.pid")"
echo "export SLURM_CONF=$CONF"
