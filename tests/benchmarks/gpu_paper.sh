#!/usr/bin/env bash
# The `paper` suite on one GPU with no network (see tests/benchmarks/gpu_paper.py and docs/TRAINING.md).
#
#   bash tests/benchmarks/gpu_paper.sh ASSETS_DIR [MORE_ASSET_DIRS...]
#
# ASSETS_DIR holds what `python tests/benchmarks/gpu_paper.py pack --dest ASSETS_DIR ...` wrote (the
# SmolLM2 GGUF in parts, ML-100k, the gguf and rapidfuzz wheels, MANIFEST.json); parts may be spread
# over several directories. Results go to $OUT (default ./gpu_out): gpu_paper.json (wall time, device,
# training tokens/s), board.md, results.json, run.log. Extra overrides: GPU_PAPER_SETS, one KEY=VALUE a line;
# extra driver flags: GPU_PAPER_ARGS (the CPU test passes "--no-gpu-sets --suite tiny --device cpu").
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 ASSETS_DIR [MORE_ASSET_DIRS...]" >&2; exit 2; }
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu_out}"
PY="${PYTHON:-python3}"
sets=()
while IFS= read -r s; do [ -n "$s" ] && sets+=(--set "$s"); done <<< "${GPU_PAPER_SETS:-}"
"$PY" - <<'EOF'
import importlib.util, sys
missing = [m for m in ("torch", "transformers", "peft", "accelerate") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_paper.sh: missing {', '.join(missing)} (they are not carried as wheels)")
EOF
export PYTHONUNBUFFERED=1
# shellcheck disable=SC2086  # GPU_PAPER_ARGS is a list of flags
exec "$PY" tests/benchmarks/gpu_paper.py run --assets "$@" --out "$OUT" --work "${GPU_PAPER_WORK:-/tmp/recx-gpu}" \
    ${GPU_PAPER_ARGS:-} "${sets[@]}"
