// Double-precision log2, exp2, sin and cos built only from + - * / and bit manipulation, so they
// give the same bits on every machine (glibc's versions differ between releases and between its
// FMA and non-FMA variants). Used for the RoPE tables and code lengths, never in a hot loop.
// Accuracy: a few units in the last place of a double, far below what a float32 result keeps.
#pragma once

namespace lorazip::engine {

// log2(x) for x > 0 (finite); -1075 for x <= 0 and NaN in, NaN out.
double fixed_log2(double x);
// 2^y for |y| < 1000.
double fixed_exp2(double y);
// sin and cos of a >= 0 (angles up to ~1e6 radians keep full accuracy).
void fixed_sincos(double a, double* s, double* c);

}  // namespace lorazip::engine
