#!/usr/bin/env bash
# Wheels that the project's GPU machine lacks, for benchmarks/gpu_check.py: zarr and the
# packages it needs beyond that machine's image (numcodecs, donfig, google-crc32c). They are
# downloaded into .whl/ at the repository root (git-ignored) for CPython 3.12 on x86-64 Linux,
# at the versions installed for $PYTHON (default python3), i.e. the versions the tests ran with.
#
#   PYTHON=/path/to/venv/bin/python benchmarks/gpu_wheels.sh [MORE==VERSION ...]
#
# On the GPU machine (the working tree and .whl/ carried there), from the repository root:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#       --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; \
#       PYTHONUNBUFFERED=1 python3 -m benchmarks.gpu_check --out "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
packages=(zarr numcodecs donfig google-crc32c)
pins=()
for name in "${packages[@]}"; do
    version=$("$python" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") || {
        echo "gpu_wheels: $name is not installed for $python; set PYTHON to the project's venv" >&2
        exit 2
    }
    pins+=("$name==$version")
done
rm -rf .whl
mkdir .whl
# pip matches each manylinux tag exactly: list the ones these packages publish.
"$python" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${pins[@]}" "$@"
ls -l .whl
