#!/usr/bin/env bash
# The GPU checks of the speed issue, as one command for a machine with a GPU and PyTorch but none of this project's
# other packages (the device machine: Python 3.12, torch 2.11, no network). At most 570 s (the timeouts below; most of
# it compiling, about 25 graphs), so run it with the device tool's timeout_s=600: one try per session, as the machine's
# start leaves too little of the 15 minutes for a second. First run 2026-12-04 on an H200 (benchmarks/gpu/; 2 min on a warm machine).
#
#   1. the compiled path's equivalence tests on CUDA (tests/test_compiled.py -k cuda: CUDA graphs of TD3, CQL and
#      the ensemble SAC compute the eager path's losses and weights; last, a 2-seed group of the k-step augmented
#      method run whole on the GPU, eager and compiled, to the same curves; the CPU ones run in CI);
#   2. benchmarks/speed.py on the GPU with the compiled rows, K = 8 batched seeds, and a smoke cell for 8 seeds.
#
# The missing packages travel as wheels in .whl/ (ignored by git; 27 MB). Fetch them once, on a machine with pip:
#
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl gymnasium==1.4.0 \
#     farama-notifications==0.0.6 mujoco==4.0.0 mujoco-core==4.0.0 mujoco-studio==4.0.0 glfw==2.11.0 \
#     pyopengl==3.1.10 jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 \
#     rpds-py==2026.9.1 minari==0.5.4 websockets
#
# then run it through the device tool with carry [".whl"]: `bash benchmarks/gpu_check.sh` (results under $OUT).
# `DEVICE=cpu WHEELS=none bash benchmarks/gpu_check.sh` rehearses the same steps on a machine without a GPU.
set -uo pipefail
start=$(date +%s)
OUT=${OUT:-benchmarks/results}
DEVICE=${DEVICE:-cuda}
WHEELS=${WHEELS:-.whl}
mkdir -p "$OUT"
if [ -d "$WHEELS" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
# Nothing here renders. MUJOCO_GL=egl made mujoco's import load PyOpenGL's EGL, which fails there without libEGL
# (AttributeError, not the ImportError mujoco catches): `disable` skips the GL context altogether.
export PYTHONUNBUFFERED=1 MUJOCO_GL=disable
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda,
           torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" | tee -a "$OUT/gpu.txt"
# 560 s in all from the start, so that one device call (600 s at most) holds everything; the benchmark gets what
# the tests leave. `timeout -k`: should SIGTERM only set a run's checkpoint flag, KILL follows 10 s later.
# -v: a line per test as it ends, so a run stopped at its time limit still says which passed.
timeout -k 10 240 python3 -m pytest -v -p no:cacheprovider tests/test_compiled.py -k "$DEVICE" 2>&1 | tee "$OUT/gpu_tests.txt"
tests=$?
left=$(( 560 - ($(date +%s) - start) ))
timeout -k 10 "$left" python3 benchmarks/speed.py --device "$DEVICE" --members 8 --seconds 1 --compile --cell smoke \
    --seed-group 8 --out "$OUT/speed_gpu.json" 2>&1 | grep --line-buffered -v Warning | tee "$OUT/speed_gpu.txt"
bench=$?
echo "tests exit $tests, benchmark exit $bench"
exit $(( tests || bench ))
