// The four classical baselines through zlib, liblzma, libzstd and libbrotli, with the settings
// listed in classical.h, plus their decoders so that tests can prove each stream is real.
#include "codec/classical.h"

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <lzma.h>
#include <zlib.h>
#include <zdict.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <stdexcept>

namespace lorazip {
namespace {

constexpr size_t kStep = size_t{1} << 16;  // output grows by at least this much per round

[[noreturn]] void fail(Classical c, const std::string& what) {
  throw std::runtime_error(classical_name(c) + ": " + what);
}

// Grows `out` so that at least kStep bytes are free beyond `used`, refusing to pass `limit`.
void grow(Classical c, std::string& out, size_t used, size_t limit) {
  if (used >= limit) fail(c, "output exceeds the limit of " + std::to_string(limit) + " bytes");
  out.resize(std::min(limit, std::max(used + kStep, out.size() * 2)));
}

// ---- gzip (zlib) ----

std::string gzip_run(std::string_view in, bool compress, size_t limit) {
  const Classical c = Classical::Gzip9;
  z_stream zs{};
  const int init = compress ? deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY)
                            : inflateInit2(&zs, 15 + 16);
  if (init != Z_OK) fail(c, "zlib init failed");
  void (*end)(z_stream*) = [](z_stream* s) { inflateEnd(s); };
  if (compress) end = [](z_stream* s) { deflateEnd(s); };
  std::unique_ptr<z_stream, void (*)(z_stream*)> guard(&zs, end);
  std::string out;
  size_t used = 0, in_pos = 0;
  for (;;) {
    if (zs.avail_in == 0 && in_pos < in.size()) {
      const size_t take = std::min<size_t>(in.size() - in_pos, UINT_MAX);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + in_pos));
      zs.avail_in = static_cast<uInt>(take);
      in_pos += take;
    }
    if (used == out.size()) grow(c, out, used, compress ? SIZE_MAX : limit);
    const size_t room = std::min<size_t>(out.size() - used, UINT_MAX);
    zs.next_out = reinterpret_cast<Bytef*>(&out[used]);
    zs.avail_out = static_cast<uInt>(room);
    const bool last_in = in_pos == in.size();
    const int rc = compress ? deflate(&zs, last_in ? Z_FINISH : Z_NO_FLUSH) : inflate(&zs, Z_NO_FLUSH);
    used += room - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_out != 0) fail(c, "truncated stream");
    if (rc != Z_OK && rc != Z_BUF_ERROR) fail(c, std::string("zlib error: ") + (zs.msg ? zs.msg : "?"));
  }
  if (!compress && (zs.avail_in != 0 || in_pos != in.size())) fail(c, "trailing bytes after the stream");
  out.resize(used);
  return out;
}

// ---- xz (liblzma) ----

std::string xz_run(std::string_view in, bool compress, size_t limit) {
  const Classical c = Classical::Xz9;
  lzma_stream zs = LZMA_STREAM_INIT;
  const lzma_ret init = compress ? lzma_easy_encoder(&zs, 9, LZMA_CHECK_CRC64)
                                 : lzma_stream_decoder(&zs, UINT64_MAX, 0);
  if (init != LZMA_OK) fail(c, "liblzma init failed (code " + std::to_string(init) + ")");
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&zs, [](lzma_stream* s) { lzma_end(s); });
  zs.next_in = reinterpret_cast<const uint8_t*>(in.data());
  zs.avail_in = in.size();
  std::string out;
  size_t used = 0;
  for (;;) {
    if (used == out.size()) grow(c, out, used, compress ? SIZE_MAX : limit);
    zs.next_out = reinterpret_cast<uint8_t*>(&out[used]);
    zs.avail_out = out.size() - used;
    const size_t before = zs.avail_out;
    const lzma_ret rc = lzma_code(&zs, LZMA_FINISH);
    used += before - zs.avail_out;
    if (rc == LZMA_STREAM_END) break;
    if (rc == LZMA_BUF_ERROR && zs.avail_out != 0) fail(c, "truncated stream");
    if (rc != LZMA_OK) fail(c, "liblzma error (code " + std::to_string(rc) + ")");
  }
  if (!compress && zs.avail_in != 0) fail(c, "trailing bytes after the stream");
  out.resize(used);
  return out;
}

// ---- zstd ----

std::string zstd_compress(std::string_view in) {
  const Classical c = Classical::Zstd19;
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) fail(c, "out of memory");
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 19);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(in.size()), '\0');
  const size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) fail(c, ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

std::string zstd_decompress(std::string_view in, size_t limit) {
  const Classical c = Classical::Zstd19;
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) fail(c, "out of memory");
  ZSTD_inBuffer ib{in.data(), in.size(), 0};
  std::string out;
  size_t used = 0;
  size_t rc = 1;
  while (rc != 0) {
    if (used == out.size()) grow(c, out, used, limit);
    ZSTD_outBuffer ob{&out[used], out.size() - used, 0};
    rc = ZSTD_decompressStream(dctx.get(), &ob, &ib);
    if (ZSTD_isError(rc)) fail(c, ZSTD_getErrorName(rc));
    used += ob.pos;
    if (rc != 0 && ib.pos == ib.size && ob.pos < ob.size) fail(c, "truncated stream");
  }
  if (ib.pos != ib.size) fail(c, "trailing bytes after the frame");
  out.resize(used);
  return out;
}

// ---- brotli ----

std::string brotli_compress(std::string_view in) {
  const Classical c = Classical::Brotli11;
  size_t n = BrotliEncoderMaxCompressedSize(in.size());
  if (n == 0) fail(c, "input too large");
  std::string out(n, '\0');
  if (!BrotliEncoderCompress(11, 22, BROTLI_MODE_GENERIC, in.size(),
                             reinterpret_cast<const uint8_t*>(in.data()), &n,
                             reinterpret_cast<uint8_t*>(out.data()))) {
    fail(c, "compression failed");
  }
  out.resize(n);
  return out;
}

std::string brotli_decompress(std::string_view in, size_t limit) {
  const Classical c = Classical::Brotli11;
  std::unique_ptr<BrotliDecoderState, void (*)(BrotliDecoderState*)> st(
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), BrotliDecoderDestroyInstance);
  if (!st) fail(c, "out of memory");
  size_t avail_in = in.size();
  const uint8_t* next_in = reinterpret_cast<const uint8_t*>(in.data());
  std::string out;
  size_t used = 0;
  for (;;) {
    if (used == out.size()) grow(c, out, used, limit);
    size_t avail_out = out.size() - used;
    uint8_t* next_out = reinterpret_cast<uint8_t*>(&out[used]);
    const size_t before = avail_out;
    const BrotliDecoderResult rc =
        BrotliDecoderDecompressStream(st.get(), &avail_in, &next_in, &avail_out, &next_out, nullptr);
    used += before - avail_out;
    if (rc == BROTLI_DECODER_RESULT_SUCCESS) break;
    if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) fail(c, "truncated stream");
    if (rc == BROTLI_DECODER_RESULT_ERROR) {
      fail(c, BrotliDecoderErrorString(BrotliDecoderGetErrorCode(st.get())));
    }
  }
  if (avail_in != 0) fail(c, "trailing bytes after the stream");
  out.resize(used);
  return out;
}

}  // namespace

const std::vector<Classical>& all_classical() {
  static const std::vector<Classical> all{Classical::Gzip9, Classical::Xz9, Classical::Zstd19,
                                          Classical::Brotli11};
  return all;
}

std::string classical_name(Classical c) {
  switch (c) {
    case Classical::Gzip9: return "gzip-9";
    case Classical::Xz9: return "xz-9";
    case Classical::Zstd19: return "zstd-19";
    case Classical::Brotli11: return "brotli-11";
  }
  throw std::invalid_argument("classical_name: unknown compressor id " +
                              std::to_string(static_cast<int>(c)));
}

std::string classical_compress(Classical c, std::string_view data) {
  switch (c) {
    case Classical::Gzip9: return gzip_run(data, true, SIZE_MAX);
    case Classical::Xz9: return xz_run(data, true, SIZE_MAX);
    case Classical::Zstd19: return zstd_compress(data);
    case Classical::Brotli11: return brotli_compress(data);
  }
  throw std::invalid_argument("classical_compress: unknown compressor id");
}

std::string classical_decompress(Classical c, std::string_view data, size_t max_output) {
  switch (c) {
    case Classical::Gzip9: return gzip_run(data, false, max_output);
    case Classical::Xz9: return xz_run(data, false, max_output);
    case Classical::Zstd19: return zstd_decompress(data, max_output);
    case Classical::Brotli11: return brotli_decompress(data, max_output);
  }
  throw std::invalid_argument("classical_decompress: unknown compressor id");
}

size_t classical_compressed_size(Classical c, std::string_view data) {
  return classical_compress(c, data).size();
}

std::string train_zstd_dictionary(const std::vector<std::string>& samples, size_t max_bytes) {
  std::string joined;
  std::vector<size_t> sizes;
  for (const auto& t : samples) {
    joined += t;
    sizes.push_back(t.size());
  }
  std::string dict(max_bytes, '\0');
  const size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), joined.data(), sizes.data(), static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n))
    throw std::runtime_error("zstd dictionary training on " + std::to_string(samples.size()) + " samples (" +
                             std::to_string(joined.size()) + " bytes) failed: " + ZDICT_getErrorName(n));
  dict.resize(n);
  return dict;
}

size_t zstd19_dict_compressed_size(const std::string& dict, std::string_view data) {
  std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!cctx) throw std::runtime_error("zstd-19 with a dictionary: out of memory");
  std::string buf(ZSTD_compressBound(data.size()), '\0');
  const size_t r = ZSTD_compress_usingDict(cctx.get(), buf.data(), buf.size(), data.data(), data.size(), dict.data(), dict.size(), 19);
  if (ZSTD_isError(r)) throw std::runtime_error(std::string("zstd-19 with a dictionary failed: ") + ZSTD_getErrorName(r));
  return r;
}

}  // namespace lorazip
