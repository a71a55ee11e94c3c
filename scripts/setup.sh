#!/usr/bin/env bash
# Create .venv with everything ptoie needs, on a fresh machine, offline except for PyPI.
#
#   scripts/setup.sh            CPU install (library, jobs, training, tests)
#   PTOIE_CUDA=1 scripts/setup.sh   CUDA build of llama.cpp + bitsandbytes (GPU machines)
#
# Why llama-cpp-python is built with explicit flags: its default build compiles llama.cpp with
# GGML_NATIVE=ON (-march=native), and on the AVX-512/AMX hosts this project runs on that binary
# segfaults at the first llama_decode; a non-native build with the instruction sets named
# explicitly (AVX2/FMA/F16C, plus AVX-512 with every AMX option OFF when the CPU has it) runs.
# pip caches nothing here (--no-cache-dir): a wheel built for one CPU's flags is never reused on another.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.ptoie-setup-done"
EXTRAS=${PTOIE_EXTRAS:-dev,train}

if [[ -f "$STAMP" && "$STAMP" -nt pyproject.toml && "$STAMP" -nt scripts/setup.sh ]]; then
  exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade pip wheel

# torch: the CPU build (2.13.0 is the CPU wheel this machine kind carries; any newer range pulls
# several GB of CUDA packages). GPU users set PTOIE_CUDA=1 and get the registry's CUDA build.
if [[ "${PTOIE_CUDA:-0}" == "1" ]]; then
  $PIP install --quiet "torch>=2.5"
else
  $PIP install --quiet "torch==2.13.0"
fi

# llama-cpp-python from source with explicit CPU flags (see the header of this file).
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  if [[ "${PTOIE_CUDA:-0}" == "1" ]]; then
    ARGS="-DGGML_CUDA=on -DGGML_NATIVE=OFF"
  else
    ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    # AVX-512 (1.3-1.5x faster here, docs/throughput.md) when the CPU has all four extensions it
    # uses; AMX stays OFF (the AMX code path is what crashes). PTOIE_LLAMA_AVX512=0 opts out.
    if [[ "${PTOIE_LLAMA_AVX512:-1}" == "1" ]] && \
       [[ $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -ow 'avx512f\|avx512vbmi\|avx512_vnni\|avx512_bf16' | sort -u | wc -l) == 4 ]]; then
      ARGS="$ARGS -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON"
      ARGS="$ARGS -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    fi
  fi
  echo "setup: building llama-cpp-python with CMAKE_ARGS='$ARGS' (about 5 minutes on 2 cores)"
  CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    $PIP install --quiet --no-cache-dir "llama-cpp-python==0.3.36"
fi

if [[ "${PTOIE_CUDA:-0}" == "1" ]]; then EXTRAS="$EXTRAS,gpu"; fi
$PIP install --quiet -e ".[$EXTRAS]"
touch "$STAMP"
echo "setup: done ($VENV)"
