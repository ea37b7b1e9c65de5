// Quantized blocks assembled by hand from the layouts written down in codec/engine/blocks.h and
// GGUF.md (not with lorazip's own packers), so that tests can state expected bytes and values
// independently of the code under test. Scales are given as raw f16 bits; codes as stored
// (before the offsets of the dequantization formulas).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace block_layout {

inline void put16(std::string& b, size_t at, uint16_t v) {
  b[at] = static_cast<char>(v & 0xFF);
  b[at + 1] = static_cast<char>(v >> 8);
}

// Q8_0, 34 bytes: d, then 32 int8 codes.
inline std::string q8_0(uint16_t d, const std::vector<int>& q) {
  std::string b(34, '\0');
  put16(b, 0, d);
  for (int i = 0; i < 32; ++i) b[2 + i] = static_cast<char>(static_cast<int8_t>(q[i]));
  return b;
}

// 16 bytes of nibbles: value j < 16 in the low nibble of byte j, value j + 16 in its high nibble.
inline void put_nibbles32(std::string& b, size_t at, const int* q) {
  for (int j = 0; j < 16; ++j) b[at + j] = static_cast<char>((q[j] & 15) | ((q[j + 16] & 15) << 4));
}

// Q4_0, 18 bytes: d, nibbles (codes 0..15).
inline std::string q4_0(uint16_t d, const std::vector<int>& q) {
  std::string b(18, '\0');
  put16(b, 0, d);
  put_nibbles32(b, 2, q.data());
  return b;
}

// Q4_1, 20 bytes: d, m, nibbles.
inline std::string q4_1(uint16_t d, uint16_t m, const std::vector<int>& q) {
  std::string b(20, '\0');
  put16(b, 0, d);
  put16(b, 2, m);
  put_nibbles32(b, 4, q.data());
  return b;
}

// The 12 scale bytes of Q4_K / Q5_K (ggml's get_scale_min_k4 read backwards), for 6-bit scales
// sc[0..7] and mins mn[0..7]:
//   byte j (j < 4):     sc[j] in bits 0..5, bits 4..5 of sc[j + 4] in bits 6..7
//   byte j + 4 (j < 4): mn[j] in bits 0..5, bits 4..5 of mn[j + 4] in bits 6..7
//   byte j + 8 (j < 4): bits 0..3 of sc[j + 4] in the low nibble, of mn[j + 4] in the high one
inline void put_k_scales(std::string& b, size_t at, const std::vector<int>& sc, const std::vector<int>& mn) {
  for (int j = 0; j < 4; ++j) {
    b[at + j] = static_cast<char>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b[at + 4 + j] = static_cast<char>(mn[j] | ((mn[j + 4] >> 4) << 6));
    b[at + 8 + j] = static_cast<char>((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
}

// The 128 nibble bytes of Q4_K / Q5_K: values 64c + l (l < 32) are the low nibbles of byte
// 32c + l, values 64c + 32 + l its high nibbles.
inline void put_k_nibbles(std::string& b, size_t at, const std::vector<int>& q) {
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b[at + 32 * c + l] = static_cast<char>((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
}

// Q4_K, 144 bytes: d, dmin, scales[12], qs[128]; codes 0..15.
inline std::string q4_k(uint16_t d, uint16_t dmin, const std::vector<int>& sc, const std::vector<int>& mn,
                        const std::vector<int>& q) {
  std::string b(144, '\0');
  put16(b, 0, d);
  put16(b, 2, dmin);
  put_k_scales(b, 4, sc, mn);
  put_k_nibbles(b, 16, q);
  return b;
}

// Q5_K, 176 bytes: d, dmin, scales[12], qh[32], qs[128]; codes 0..31, whose bit 4 for value
// 64c + l is bit 2c of qh[l] and for value 64c + 32 + l bit 2c + 1.
inline std::string q5_k(uint16_t d, uint16_t dmin, const std::vector<int>& sc, const std::vector<int>& mn,
                        const std::vector<int>& q) {
  std::string b(176, '\0');
  put16(b, 0, d);
  put16(b, 2, dmin);
  put_k_scales(b, 4, sc, mn);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l) {
      const int lo = (q[64 * c + l] >> 4) & 1, hi = (q[64 * c + 32 + l] >> 4) & 1;
      b[16 + l] = static_cast<char>(static_cast<uint8_t>(b[16 + l]) | (lo << (2 * c)) | (hi << (2 * c + 1)));
    }
  put_k_nibbles(b, 48, q);
  return b;
}

// Q6_K, 210 bytes: ql[128], qh[64], scales[16] (int8), d; codes 0..63. In half h, for l < 32:
// value 128h + 32t + l has its low 4 bits in ql[64h + l] (t = 0: low nibble, t = 2: high) or
// ql[64h + 32 + l] (t = 1: low, t = 3: high), and its bits 4..5 in bits 2t..2t+1 of qh[32h + l].
inline std::string q6_k(uint16_t d, const std::vector<int>& sc, const std::vector<int>& q) {
  std::string b(210, '\0');
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const int* v = q.data() + 128 * h;
      b[64 * h + l] = static_cast<char>((v[l] & 15) | ((v[64 + l] & 15) << 4));
      b[64 * h + 32 + l] = static_cast<char>((v[32 + l] & 15) | ((v[96 + l] & 15) << 4));
      int hb = 0;
      for (int t = 0; t < 4; ++t) hb |= ((v[32 * t + l] >> 4) & 3) << (2 * t);
      b[128 + 32 * h + l] = static_cast<char>(hb);
    }
  for (int s = 0; s < 16; ++s) b[192 + s] = static_cast<char>(static_cast<int8_t>(sc[s]));
  put16(b, 208, d);
  return b;
}

}  // namespace block_layout
