#!/bin/sh
# Disassembly lint of the engine's object files (docs/engine-arithmetic.md): no approximate
# reciprocal / reciprocal-square-root instructions (their tables differ between CPU vendors), no
# fused multiply-add (the contract rounds the product), and no calls to libm's transcendental
# functions (glibc's differ between releases and between its FMA and non-FMA variants).
#   engine_lint.sh OBJDUMP NM OBJECT...
set -u
objdump=$1 nm=$2
shift 2
[ $# -gt 0 ] || { echo "engine_lint: no object files given"; exit 2; }
status=0
for obj in "$@"; do
  bad_insn=$("$objdump" -d --no-show-raw-insn "$obj" |
    grep -Ei '[[:space:]](v?rsqrt[a-z0-9]*|v?rcp[0-9a-z]*|vfn?m(add|sub)[a-z0-9]*|fn?m(add|sub)|fmla|fmls|frsqrte|frecpe|frsqrts|frecps)[[:space:]]' |
    head -5)
  bad_call=$("$nm" -u "$obj" |
    grep -Ew '(exp|expf|exp2|exp2f|expm1|expm1f|log|logf|log2|log2f|log1p|log1pf|log10|log10f|pow|powf|sin|sinf|cos|cosf|sincos|sincosf|tan|tanf|tanh|tanhf|erf|erff|sqrt|sqrtf|_ZGV[a-zA-Z0-9_]*)' |
    head -5)
  if [ -n "$bad_insn" ]; then
    echo "engine_lint: $obj contains forbidden instructions:"; echo "$bad_insn"; status=1
  fi
  if [ -n "$bad_call" ]; then
    echo "engine_lint: $obj calls libm:"; echo "$bad_call"; status=1
  fi
done
[ $status -eq 0 ] && echo "engine_lint: $# object files clean (no rsqrt/rcp/fma instructions, no libm calls)"
exit $status
