#!/usr/bin/env bash
# The device check (bench/gpu_check.py): on a CUDA machine with the project installed, a few minutes,
# nothing installed or downloaded. Last line: one JSON object. `bash bench/gpu_check.sh --cpu` is the
# dry run at toy size. The full JSON also goes to ${OUT:-.}/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export DVC_NO_ANALYTICS=1 DO_NOT_TRACK=1 PYTHONUNBUFFERED=1
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'devices', torch.cuda.device_count())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec timeout 480 python bench/gpu_check.py --out "${OUT:-.}/gpu_check.json" "$@"
