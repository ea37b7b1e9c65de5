// Fixed-arithmetic double math for the engine (math.h). Compiled with -ffp-contract=off.
#include "codec/engine/math.h"

#include <cstdint>
#include <cstring>

namespace lorazip::engine {
namespace {

uint64_t bits_of(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
double from_bits(uint64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}
// 2^n for n in [-1022, 1023].
double pow2i(int64_t n) { return from_bits(static_cast<uint64_t>(n + 1023) << 52); }

// Round to nearest (ties to even) for |x| < 2^51, by adding and removing 1.5 * 2^52.
double round_nearest(double x) { return (x + 6755399441055744.0) - 6755399441055744.0; }

}  // namespace

double fixed_log2(double x) {
  if (x != x) return x;
  if (!(x > 0)) return -1075.0;
  int64_t e = 0;
  if (x < 2.2250738585072014e-308) {  // subnormal: scale into the normal range first
    x = x * 18014398509481984.0;       // 2^54
    e -= 54;
  }
  const uint64_t b = bits_of(x);
  e += static_cast<int64_t>((b >> 52) & 0x7FF) - 1023;
  double m = from_bits((b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);  // [1, 2)
  if (m > 1.4142135623730951) {
    m = m * 0.5;
    e += 1;
  }
  // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716: odd series to s^31.
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double sum = 1.0 / 31.0;
  for (int k = 29; k >= 1; k -= 2) sum = sum * s2 + 1.0 / static_cast<double>(k);
  const double ln_m = 2.0 * s * sum;
  return static_cast<double>(e) + ln_m * 1.4426950408889634;  // 1 / ln 2
}

double fixed_exp2(double y) {
  const double n = round_nearest(y);
  const double t = (y - n) * 0.6931471805599453;  // |t| <= 0.347
  double sum = 1.0;                                // Taylor series of exp(t) to t^18, Horner form
  for (int k = 18; k >= 1; --k) sum = 1.0 + t * sum / static_cast<double>(k);
  return sum * pow2i(static_cast<int64_t>(n));
}

void fixed_sincos(double a, double* s, double* c) {
  // a = k * pi/2 + r, with pi/2 split into three parts (the first two of 33 significant bits, so
  // k * part is exact for k < 2^20), |r| <= pi/4.
  const double k = round_nearest(a * 0.6366197723675814);  // 2 / pi
  double r = a - k * 1.57079632673412561417e+00;
  r = r - k * 6.07710050630396597660e-11;
  r = r - k * 2.02226624871116645580e-21;
  const double r2 = r * r;
  double sn = 0.0, cs = 0.0;  // Taylor series to r^23 and r^22
  for (int j = 11; j >= 1; --j) sn = (1.0 - r2 * sn) / static_cast<double>((2 * j) * (2 * j + 1));
  sn = r * (1.0 - r2 * sn);
  for (int j = 11; j >= 1; --j) cs = (1.0 - r2 * cs) / static_cast<double>((2 * j - 1) * (2 * j));
  cs = 1.0 - r2 * cs;
  const int64_t q = static_cast<int64_t>(k) & 3;
  const double sv = q == 0 ? sn : q == 1 ? cs : q == 2 ? -sn : -cs;
  const double cv = q == 0 ? cs : q == 1 ? -sn : q == 2 ? -cs : sn;
  *s = sv;
  *c = cv;
}

}  // namespace lorazip::engine
