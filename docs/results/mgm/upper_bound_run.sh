#!/usr/bin/env bash
# Issue 13: the upper bound (weakly labelled real images) against MT at the plateau length, seed 0.
# Run from the repository root with the project installed (session 12, at commit 777cb3b).
set -e
python bench/mgm_comparison.py --gan-steps 1 --fractions 0.5 --seeds 0 --variants mt mgm-real \
    --test-images 1000 --set train_mt.epochs=24 --set mgm.epochs=24 --set gan.fid_extractor=tiny \
    --work bench/out/upper --csv bench/out/upper/rows.csv --out bench/out/upper/table.md
