#!/usr/bin/env bash
# Issue 14: MGM with MTI-Net as M against MTI-Net alone at 50 % labels, 3 seeds, 5 epochs each.
# Run from the repository root with the project installed (session 12 ran it at commit 0a87a4a).
# Today's nearest one command (its GAN evaluates 300 images, not 256): python bench/mgm_comparison.py --gan-steps 600 --fractions 0.5 \
#   --seeds 0 1 2 --variants mt mgm --set model.architecture=mti --set train_mt.epochs=5 \
#   --set mgm.epochs=5 --set gan.fid_extractor=tiny
set -e
export MGM_PROGRESS_INTERVAL=300
work=bench/out/mti_mgm
shards=$work/labels-0.5/shards
# the GAN pre-trained on the 300 labelled images only (train split at label fraction 0.5)
mgm shard --set data.label_fraction=0.5 --set shard.out=$shards --quiet
mgm train_gan --set data.label_fraction=0.5 --set shard.out=$shards --set gan.steps=600 \
    --set gan.eval_every=600 --set gan.fid_extractor=tiny --set gan.eval_images=256 --set gan.out=$work/gan \
    --set gan.plots=$work/gan/plots --metrics $work/gan/metrics.json --quiet
python bench/mgm_comparison.py --gan $work/gan/last.pt --fractions 0.5 --seeds 0 1 2 \
    --variants mt mgm --set model.architecture=mti --set train_mt.epochs=5 --set mgm.epochs=5 \
    --work $work --out $work/table.md
