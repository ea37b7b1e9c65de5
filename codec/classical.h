// Classical compressors, called through their own libraries, as the baselines that lorazip's
// reports set beside the LM codec. Settings match the usual command lines at their strongest
// standard levels:
//   gzip-9     zlib deflate, level 9, gzip wrapper (10-byte header, CRC32 + size trailer; no name)
//   xz-9       liblzma preset 9, .xz container with a CRC64 check (as `xz -9`)
//   zstd-19    libzstd level 19, frame with content size and checksum (as `zstd -19`)
//   brotli-11  libbrotlienc quality 11, window 2^22, generic mode (raw stream, as `brotli -q 11 -w 22`)
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lorazip {

enum class Classical { Gzip9, Xz9, Zstd19, Brotli11 };

// All four, in report order.
const std::vector<Classical>& all_classical();

// "gzip-9", "xz-9", "zstd-19", "brotli-11".
std::string classical_name(Classical c);

// The compressed stream. std::runtime_error naming the compressor if the library fails.
std::string classical_compress(Classical c, std::string_view data);

// Inverse of classical_compress. std::runtime_error for a malformed stream or one that would
// decompress to more than `max_output` bytes.
std::string classical_decompress(Classical c, std::string_view data,
                                 size_t max_output = size_t{1} << 32);

// Size in bytes of classical_compress(c, data).
size_t classical_compressed_size(Classical c, std::string_view data);

// zstd's answer to many small files (as `zstd --train`): a dictionary of at most `max_bytes`
// trained by ZDICT_trainFromBuffer on `samples`. std::runtime_error with zstd's reason when
// training fails (e.g. too few or too small samples).
std::string train_zstd_dictionary(const std::vector<std::string>& samples, size_t max_bytes = 16 * 1024);

// Size in bytes of `data` compressed alone by zstd level 19 with `dict` (a zstd frame, as
// `zstd -19 -D dict`; the dictionary itself is not counted).
size_t zstd19_dict_compressed_size(const std::string& dict, std::string_view data);

}  // namespace lorazip
