#!/usr/bin/env bash
# scripts/slurm/predict_array.sh on a real single-node Slurm started here: munged, slurmctld and
# slurmd on localhost (state, spool, logs and the munge key under a temporary folder; nothing in
# /etc is changed). A 6-case synthetic cohort of 32x32x16 and a model trained in seconds are
# predicted as a 3-part job array; one task is cancelled (scancel) once its first case is recorded,
# `cohort status` shows it incomplete, it is resubmitted alone, and then every case must be
# segmented exactly once, with label maps byte-equal to a single-process `brainseg predict`.
#
# Needs root (SlurmUser=root) and Debian's slurm-wlm and munge (installed with apt-get if missing).
# Usage: tests/slurm/run.sh [path to brainseg, default target/release/brainseg]; KEEP=1 keeps the
# temporary folder.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BRAINSEG="$(realpath "${1:-$ROOT/target/release/brainseg}")"
started=$SECONDS
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ -x "$BRAINSEG" ]] || fail "$BRAINSEG: not built (cargo build --release)"
[[ $(id -u) == 0 ]] || fail "needs root (a single-node Slurm with SlurmUser=root)"
if ! command -v sbatch >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge; }
fi

WORK="$(mktemp -d /tmp/brainseg-slurm.XXXXXX)"
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local rc=$?
    if (( rc != 0 )); then
        for log in "$WORK"/log/*.log "$WORK"/jobs/*.out; do
            [[ -f "$log" ]] && { echo "--- $log"; tail -n 25 "$log"; }
        done
    fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done
    [[ -n "${KEEP:-}" ]] && echo "kept $WORK" || rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
mkdir -p "$WORK"/{munge,state,spool,log,jobs}
chmod 755 "$WORK/munge"

# munge: its own key and socket.
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
munged --force --key-file="$WORK/munge/munge.key" --socket="$WORK/munge/socket" \
    --pid-file="$WORK/munge/munged.pid" --log-file="$WORK/log/munged.log" \
    --seed-file="$WORK/munge/seed"
for _ in $(seq 50); do [[ -s "$WORK/munge/munged.pid" ]] && break; sleep 0.1; done
PIDS+=("$(cat "$WORK/munge/munged.pid")")

# Slurm: one node of 2 CPUs, ports away from a real installation's.
export SLURM_CONF="$WORK/slurm.conf"
cat > "$SLURM_CONF" <<CONF
ClusterName=brainsegtest
SlurmctldHost=localhost
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$WORK/munge/socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
KillWait=5
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -c -i
for _ in $(seq 100); do [[ -s "$WORK/slurmctld.pid" ]] && break; sleep 0.1; done
[[ -s "$WORK/slurmctld.pid" ]] || fail "slurmctld did not start"
PIDS+=("$(cat "$WORK/slurmctld.pid")")
slurmd -N localhost
for _ in $(seq 100); do [[ -s "$WORK/slurmd.pid" ]] && break; sleep 0.1; done
[[ -s "$WORK/slurmd.pid" ]] || fail "slurmd did not start"
PIDS+=("$(cat "$WORK/slurmd.pid")")
for _ in $(seq 150); do
    state="$(sinfo -h -n localhost -o %t 2>/dev/null || true)"
    [[ "$state" == idle ]] && break
    sleep 0.2
done
[[ "$state" == idle ]] || fail "the node is not idle: '${state}' ($(sinfo 2>&1 | tail -n 1))"
echo "slurm $(sinfo -V | cut -d' ' -f2) up: $(sinfo -h -o '%P %D %c %t')  [$((SECONDS - started)) s]"

# The cohort: demo's synthetic data (6 cases of 32x32x16) and a model trained in seconds.
"$BRAINSEG" demo --out "$WORK/demo" --cases 6 --shape 32 32 16 --patch 16 16 8 --base-filters 2 \
    --epochs 1 --steps-per-epoch 1 > "$WORK/log/demo.txt" 2>&1 || { cat "$WORK/log/demo.txt"; fail "demo"; }
DATA="$WORK/demo/data"
"$BRAINSEG" train -i "$DATA" -o "$WORK/run" --patch 16 16 8 --depth 2 --base-filters 2 --epochs 1 \
    --steps-per-epoch 1 --batch-size 1 --valid-patches 1 > "$WORK/log/train.txt" 2>&1 \
    || { cat "$WORK/log/train.txt"; fail "train"; }
MODEL="$WORK/run/best.safetensors"
# Mirroring and a dense sliding window make a case slow enough (seconds) to cancel a part in its middle.
EXTRA="--tta --overlap 0.75"
RAYON_NUM_THREADS=1 "$BRAINSEG" predict -i "$DATA" -o "$WORK/single" --model "$MODEL" $EXTRA > "$WORK/log/single.txt" 2>&1 \
    || { cat "$WORK/log/single.txt"; fail "single-process predict"; }
mapfile -t CASES < <(cd "$WORK/single" && ls *.nii.gz | sed 's/\.nii\.gz$//' | sort)
(( ${#CASES[@]} == 6 )) || fail "expected 6 cases, the single run wrote ${#CASES[@]}"
echo "cohort: ${CASES[*]}  [$((SECONDS - started)) s]"

OUT="$WORK/out"
submit() { # submit ARRAY: prints the job id
    N=3 INPUT="$DATA" OUT="$OUT" MODEL="$MODEL" EXTRA="$EXTRA" BRAINSEG="$BRAINSEG" \
        sbatch --parsable --array="$1" --cpus-per-task=1 --mem=200M \
        --output="$WORK/jobs/%A_%a.out" --chdir="$WORK" "$ROOT/scripts/slurm/predict_array.sh"
}
wait_job() { # wait_job ID
    for _ in $(seq 1200); do
        [[ -z "$(squeue -h -j "$1" 2>/dev/null)" ]] && return 0
        sleep 0.2
    done
    fail "job $1 still running after 4 minutes: $(squeue)"
}
recorded() { # recorded K: cases in part K's record
    local record="$OUT/predictions.part-$1-of-3.json"
    [[ -f "$record" ]] || { echo 0; return; }
    python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$record"
}
ok_cases() { # ok_cases MANIFEST...: cases with status ok
    cat "$@" | python3 -c 'import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e["status"] == "ok": print(e["case"])'
}

job="$(submit 0-2)"
echo "submitted array job $job (parts 1/3, 2/3, 3/3)"
# Cancel part 2 (array index 1) once its record lists its first case: mid-run.
for _ in $(seq 1200); do
    (( $(recorded 2) >= 1 )) && break
    sleep 0.05
done
(( $(recorded 2) >= 1 )) || fail "part 2 recorded nothing"
scancel "${job}_1"
echo "scancel ${job}_1 with $(recorded 2) of 2 cases of part 2 recorded"
wait_job "$job"
grep -h "interrupted\|part 2/3" "$WORK/jobs/${job}_1.out" || true
(( $(recorded 2) == 1 )) || fail "part 2 finished before it was cancelled ($(recorded 2) cases)"

echo "=== cohort status after the kill"
"$BRAINSEG" cohort status "$OUT" --input "$DATA" | tee "$WORK/status1.txt"
grep -q "done 5, failed 0, missing 1 of 6 case(s)" "$WORK/status1.txt" || fail "status after the kill"
grep -q "to run again: part(s) 2/3 (sbatch --array=1)" "$WORK/status1.txt" || fail "part 2 not listed to run again"
cp "$OUT/manifest.part-2-of-3.jsonl" "$WORK/manifest-2-killed.jsonl"

job2="$(submit 1)"
echo "resubmitted part 2/3 alone: job $job2 (sbatch --array=1)"
wait_job "$job2"
echo "=== cohort status after the resubmission"
"$BRAINSEG" cohort status "$OUT" --input "$DATA" | tee "$WORK/status2.txt"
grep -q "done 6, failed 0, missing 0 of 6 case(s)" "$WORK/status2.txt" || fail "status after the resubmission"
grep -q "to run again" "$WORK/status2.txt" && fail "a part is still to run again"

# Exactly once: over every run's manifest, each case is ok once; and byte-equal to the single run.
ok="$(ok_cases "$OUT/manifest.part-1-of-3.jsonl" "$OUT/manifest.part-3-of-3.jsonl" \
    "$WORK/manifest-2-killed.jsonl" "$OUT/manifest.part-2-of-3.jsonl" | sort | tr '\n' ' ')"
[[ "$ok" == "${CASES[*]} " ]] || fail "cases segmented (ok) over the runs: $ok; expected each of ${CASES[*]} once"
grep -q '"status":"skipped"' "$OUT/manifest.part-2-of-3.jsonl" || fail "the resubmitted part redid its done case"
mapfile -t written < <(cd "$OUT" && ls *.nii.gz | sed 's/\.nii\.gz$//' | sort)
[[ "${written[*]}" == "${CASES[*]}" ]] || fail "label maps written: ${written[*]}"
for case in "${CASES[@]}"; do
    cmp "$WORK/single/$case.nii.gz" "$OUT/$case.nii.gz" || fail "$case differs from the single-process run"
done
echo "PASS: 6 cases, each segmented once over 3 parts (one cancelled and resubmitted), byte-equal to a single-process run [$((SECONDS - started)) s]"
