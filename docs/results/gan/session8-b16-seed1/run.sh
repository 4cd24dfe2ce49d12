#!/usr/bin/env bash
# Session 8, pair A: batch 16 (2500 steps, 40 kimg) with seed 1, and batch 16 with cutout off (seed 0), side by side at one torch thread each.
cd /tmp/gx
. /work/main/.venv/bin/activate
export MGM_PROGRESS_INTERVAL=120 OMP_NUM_THREADS=1
common="--params /work/main/params.yaml --set shard.out=/tmp/gx/real --set runtime.threads=1 --set runtime.cache=/tmp/gx/.cache/mgm"
b16="--set gan.batch_size=16 --set gan.steps=2500 --set gan.eval_every=500 --set gan.sample_every=500 --set gan.checkpoint_every=250"
run() { name=$1; shift; mgm train_gan $common $b16 --set gan.out=runs/$name --set gan.plots=runs/$name/plots --metrics runs/$name/metrics.json "$@" > runs/$name.log 2>&1; echo "rc=$?" >> runs/$name.log; }
run b16-seed1 --set gan.seed=1 &
# the second starts once the first has cached the real references (no duplicate Inception pass)
until ls /tmp/gx/.cache/mgm/*.npz >/dev/null 2>&1 || ls /tmp/gx/.cache/mgm/*/*.npz >/dev/null 2>&1; do sleep 5; done
run b16-nocutout --set 'gan.diffaugment=[translation]' &
wait
