#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start.sh: slurmd, slurmctld, and
# munged if start.sh started it.  Safe to run when nothing is running.
# WMAUG_SLURM_PURGE=1 also removes the whole WMAUG_SLURM_DIR.
set -euo pipefail

DIR=${WMAUG_SLURM_DIR:-/tmp/wmaug-slurm}
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
log() { echo "[wmaug-slurm] $*" >&2; }

# stop_pid NAME PID [GRACE] : SIGTERM, wait up to GRACE seconds (15), then SIGKILL.
stop_pid() {
    local name=$1 pid=$2 grace=${3:-15}
    kill -0 "$pid" 2>/dev/null || return 0
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $(( grace * 2 ))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    log "$name (pid $pid) ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# Daemons of *this* cluster: the pid file, or a process whose command line names
# our slurm.conf (covers a lost pid file).
ours() {
    local name=$1
    local pid
    if [[ -s "$DIR/run/$name.pid" ]]; then
        pid=$(cat "$DIR/run/$name.pid")
        # ignore a stale pid file whose pid now belongs to something else
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] && echo "$pid"
    fi
    pgrep -x "$name" -a 2>/dev/null | awk -v c="$DIR/etc/slurm.conf" 'index($0, c) {print $1}' || true
}

# Cancel what is queued or running: slurmd does not kill running jobs when it stops,
# so their slurmstepd processes would outlive it.
export SLURM_CONF="$DIR/etc/slurm.conf"
if [[ -e $SLURM_CONF ]] && [[ -n $(ours slurmctld) ]]; then
    jobs=$(timeout 10 squeue -h -t PD,R,CG,S,CF -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [[ -n ${jobs// /} ]]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        # Wait for the steps to end, unless slurmd is gone (then nothing will end them).
        slurmd_pid=$(ours slurmd | head -n 1)
        for _ in $(seq 20); do
            [[ -n $slurmd_pid ]] && kill -0 "$slurmd_pid" 2>/dev/null || break
            [[ -z $(timeout 5 squeue -h -t R,CG -o %A 2>/dev/null || true) ]] && break
            sleep 0.5
        done
    fi
fi

# slurmd first, then the controller.
for d in slurmd slurmctld; do
    for pid in $(ours "$d" | sort -u); do stop_pid "$d" "$pid"; done
    rm -f "$DIR/run/$d.pid"
done

# descendants PID : all processes below PID, depth first.
descendants() {
    local c
    for c in $(pgrep -P "$1" 2>/dev/null || true); do echo "$c"; descendants "$c"; done
}

# Job steps of this cluster that survived, e.g. because slurmd had died before
# scancel could reach it (slurmstepd inherits SLURM_CONF from slurmd).  Kill the
# job's processes too: they would be orphaned by a killed slurmstepd.
for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
    if grep -qa "$DIR/" "/proc/$pid/environ" 2>/dev/null; then
        kids=$(descendants "$pid" | tr '\n' ' ')
        for k in $kids; do
            kill -KILL "$k" 2>/dev/null && log "killed job process $k" || true
        done
        stop_pid slurmstepd "$pid" 2
    fi
done

if [[ -s "$DIR/run/munged.started" ]]; then
    pid=$(cat "$DIR/run/munged.started")
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == munged ]]; then
        stop_pid munged "$pid"
    fi
    rm -f "$DIR/run/munged.started"
else
    log "munged was not started by start.sh, leaving it running"
fi

if [[ -L /etc/slurm/slurm.conf && $(readlink /etc/slurm/slurm.conf) == "$DIR/etc/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf  # start.sh's link
fi

if [[ ${WMAUG_SLURM_PURGE:-0} == 1 ]]; then
    rm -rf "${DIR:?}"
    log "removed $DIR"
fi

left=""
for n in slurmctld slurmscriptd slurmd slurmstepd; do
    for pid in $(pgrep -x "$n" || true); do left+="$n:$pid "; done
done
if [[ -n $left ]]; then
    log "WARNING: slurm processes still running: $left"
    exit 1
fi
log "stopped"
