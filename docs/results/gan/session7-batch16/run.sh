#!/usr/bin/env bash
# Two 40-kimg train_gan runs side by side, one torch thread each: the default and batch 16 (2x the G updates per kimg).
cd /tmp/gx
. /work/main/.venv/bin/activate
export MGM_PROGRESS_INTERVAL=120 OMP_NUM_THREADS=1
common="--params /work/main/params.yaml --set shard.out=/tmp/gx/real --set runtime.threads=1 --set runtime.cache=/tmp/gx/.cache/mgm"
run() { name=$1; shift; mgm train_gan $common --set gan.out=runs/$name --set gan.plots=runs/$name/plots --metrics runs/$name/metrics.json "$@" > runs/$name.log 2>&1; echo "rc=$?" >> runs/$name.log; }
mkdir -p runs
run control --set gan.eval_every=250 &
run batch16 --set gan.batch_size=16 --set gan.steps=2500 --set gan.eval_every=500 --set gan.sample_every=400 --set gan.checkpoint_every=200 &
wait
