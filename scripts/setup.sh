#!/usr/bin/env bash
# Create .venv and install modelgate with its test extras. Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: optimum-intel needs torchvision, and this pair resolves on CPU-only machines.
.venv/bin/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
# PYTHONWARNINGS: the build backend's editable-install banner is not ours to show.
# constraints.txt: the versions the suite is validated with (an unconstrained resolve can pick an older
# optimum-intel and transformers than the ones the engine is tested on).
PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet -e ".[test]" -c constraints.txt
echo "modelgate installed in .venv ($(.venv/bin/python -c 'import openvino; print("openvino", openvino.__version__)'))"
