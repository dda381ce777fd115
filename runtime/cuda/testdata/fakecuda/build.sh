#!/usr/bin/env bash
# build.sh OUT INCLUDE: builds libcuda.so.1, libcublas.so.11 and
# libnvrtc.so.11.2 stand-ins (see README) into OUT, with CUDA's headers
# from INCLUDE. Run a test binary with LD_LIBRARY_PATH=OUT.
set -euo pipefail
out=$1
include=$2
here=$(cd "$(dirname "$0")" && pwd)
kernels=$here/../../../gpu/kernels
mkdir -p "$out"
flags=(-std=c++17 -O2 -ffp-contract=off -fPIC -shared -Wall -Wextra -Wno-unused-parameter -I"$include" -I"$kernels" -I"$here")
# Symbols of libcublas and libnvrtc are versioned by their soname.
printf 'libcublas.so.11 { global: *; };\n' >"$out/cublas.map"
printf 'libnvrtc.so.11.2 { global: *; };\n' >"$out/nvrtc.map"
g++ "${flags[@]}" -Wl,-soname,libcuda.so.1 -o "$out/libcuda.so.1" "$here/fake_cuda.cpp" -lpthread
g++ "${flags[@]}" -Wl,-soname,libcublas.so.11 -Wl,--version-script="$out/cublas.map" -o "$out/libcublas.so.11" "$here/fake_cublas.cpp"
g++ "${flags[@]}" -Wl,-soname,libnvrtc.so.11.2 -Wl,--version-script="$out/nvrtc.map" -o "$out/libnvrtc.so.11.2" "$here/fake_nvrtc.cpp"
