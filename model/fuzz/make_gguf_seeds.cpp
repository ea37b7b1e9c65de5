// Writes the seed files of fuzz_gguf (scripts/fuzz.sh runs it): a tiny Llama with tensors of the
// 32-value block types and tokenizer metadata, a LoRA adapter, a file of every metadata value type
// with nested arrays and a non-default alignment, and a file with a tensor of every engine weight
// kind (K-quants included). With BLOCKS_DIR, also the seeds of fuzz_gguf_blocks: 4 selector bytes
// (kind, rows, blocks per row, flags) followed by quantized rows of each kind, or by a seed file.
// Usage: make_gguf_seeds DIR [BLOCKS_DIR]
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "codec/engine/blocks.h"
#include "common/fs.h"
#include "model/gguf.h"
#include "model/gguf_llama.h"
#include "model/gguf_quant.h"

using namespace lorazip;

namespace {

// Blocks of `type` for `n` values with a simple varying pattern (any bytes are valid blocks
// except that f16 scales should be finite, so they are set to 0x3C00 = 1.0).
std::string blocks(uint32_t type, int64_t n) {
  const GgmlTypeTraits* t = ggml_type_traits(type);
  std::string out(static_cast<size_t>(n / t->block_size * t->type_size), '\0');
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(i * 37 + 11);
  if (type == ggml_type::Q8_0 || type == ggml_type::Q4_0 || type == ggml_type::Q4_1)
    for (size_t b = 0; b < out.size(); b += t->type_size) {
      out[b] = 0x00;
      out[b + 1] = 0x3C;
    }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: make_gguf_seeds DIR [BLOCKS_DIR]\n");
    return 2;
  }
  const std::string dir = argv[1];
  try {
    LlamaConfig c;
    c.vocab_size = 8;
    c.hidden_size = 32;
    c.intermediate_size = 32;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 1;
    c.max_position_embeddings = 64;
    c.tie_word_embeddings = true;
    GgufWriter w;
    add_llama_metadata(w, c);
    w.add("tokenizer.ggml.model", GgufValue::of_string("gpt2"));
    w.add("tokenizer.ggml.tokens", GgufValue::of_string_array({"<|endoftext|>", "a", "b", "Ġ", "Ċ", "ab", "Ġa", "c"}));
    w.add("tokenizer.ggml.token_type", GgufValue::of_i32_array({3, 1, 1, 1, 1, 1, 1, 1}));
    w.add("tokenizer.ggml.merges", GgufValue::of_string_array({"a b", "Ġ a"}));
    w.add_tensor("token_embd.weight", {32, 8}, ggml_type::Q8_0, blocks(ggml_type::Q8_0, 256));
    w.add_tensor("output_norm.weight", {32}, ggml_type::F32, blocks(ggml_type::F32, 32));
    w.add_tensor("blk.0.attn_norm.weight", {32}, ggml_type::F32, blocks(ggml_type::F32, 32));
    w.add_tensor("blk.0.ffn_norm.weight", {32}, ggml_type::BF16, blocks(ggml_type::BF16, 32));
    w.add_tensor("blk.0.attn_q.weight", {32, 32}, ggml_type::Q4_0, blocks(ggml_type::Q4_0, 1024));
    w.add_tensor("blk.0.attn_k.weight", {32, 16}, ggml_type::Q4_1, blocks(ggml_type::Q4_1, 512));
    w.add_tensor("blk.0.attn_v.weight", {32, 16}, ggml_type::F16, blocks(ggml_type::F16, 512));
    w.add_tensor("blk.0.attn_output.weight", {32, 32}, ggml_type::Q8_0, blocks(ggml_type::Q8_0, 1024));
    w.add_tensor("blk.0.ffn_gate.weight", {32, 32}, ggml_type::Q4_0, blocks(ggml_type::Q4_0, 1024));
    w.add_tensor("blk.0.ffn_up.weight", {32, 32}, ggml_type::Q4_1, blocks(ggml_type::Q4_1, 1024));
    w.add_tensor("blk.0.ffn_down.weight", {32, 32}, ggml_type::Q8_0, blocks(ggml_type::Q8_0, 1024));
    w.write(dir + "/tiny-llama.gguf");

    GgufWriter l;
    l.add("general.architecture", GgufValue::of_string("llama"));
    l.add("general.type", GgufValue::of_string("adapter"));
    l.add("adapter.type", GgufValue::of_string("lora"));
    l.add("adapter.lora.alpha", GgufValue::of_f32(16.0f));
    l.add_tensor("blk.0.attn_q.weight.lora_a", {32, 2}, ggml_type::F32, blocks(ggml_type::F32, 64));
    l.add_tensor("blk.0.attn_q.weight.lora_b", {2, 32}, ggml_type::F32, blocks(ggml_type::F32, 64));
    l.write(dir + "/lora.gguf");

    GgufWriter v;
    v.set_alignment(64);
    GgufValue u8, i8, u16, i16, i64, f64;
    u8.type = GgufValueType::U8, u8.u = 7;
    i8.type = GgufValueType::I8, i8.i = -7;
    u16.type = GgufValueType::U16, u16.u = 700;
    i16.type = GgufValueType::I16, i16.i = -700;
    i64.type = GgufValueType::I64, i64.i = -70000000000;
    f64.type = GgufValueType::F64, f64.f = 0.25;
    v.add("u8", u8);
    v.add("i8", i8);
    v.add("u16", u16);
    v.add("i16", i16);
    v.add("u32", GgufValue::of_u32(7));
    v.add("i32", GgufValue::of_i32(-7));
    v.add("u64", GgufValue::of_u64(1ull << 40));
    v.add("i64", i64);
    v.add("f32", GgufValue::of_f32(0.5f));
    v.add("f64", f64);
    v.add("bool", GgufValue::of_bool(true));
    v.add("nested", GgufValue::of_array(GgufValueType::ARRAY, {GgufValue::of_i32_array({1, 2}), GgufValue::of_i32_array({})}));
    v.add("floats", GgufValue::of_f32_array({1.0f, -1.0f}));
    v.add_tensor("t", {64}, ggml_type::BF16, blocks(ggml_type::BF16, 64));
    v.write(dir + "/all-types.gguf");

    // Every engine kind, quantized from a ramp with a few sign changes (one row of 256 each, so
    // that the file stays under the fuzzers' 8 KiB input limit).
    std::vector<float> x(256 * 4);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
    GgufWriter k;
    k.add("general.architecture", GgufValue::of_string("llama"));
    for (int i = 0; i < engine::kWeightKinds; ++i) {
      const engine::WeightKind kind = static_cast<engine::WeightKind>(i);
      add_quantized_tensor(k, std::string("t.") + engine::kind_name(kind), {256, 1}, kind, x.data());
    }
    k.write(dir + "/kinds.gguf");

    if (argc == 3) {
      const std::string bdir = argv[2];
      for (int i = 0; i < engine::kWeightKinds; ++i) {
        const engine::WeightKind kind = static_cast<engine::WeightKind>(i);
        const uint32_t block = engine::kind_traits(kind).block;
        // 16 rows (one panel) as 2 heads of 8 rows for the q/k permutation (flags 4: heads = 4 >> 1).
        const int64_t cols = block == 1 ? 64 : (block == 32 ? 64 : 256), rows = 16;
        std::string seed = {static_cast<char>(i), static_cast<char>(rows - 1), static_cast<char>(block == 1 ? 63 : cols / block - 1), 4};
        for (int64_t r = 0; r < rows; ++r) seed += quantize_row(kind, x.data() + (r % 4) * cols, cols);
        write_file_atomic(bdir + "/rows-" + engine::kind_name(kind) + ".bin", seed);
      }
      for (const char* name : {"tiny-llama.gguf", "lora.gguf", "all-types.gguf", "kinds.gguf"}) {
        const std::string file = read_file(dir + "/" + name);
        write_file_atomic(bdir + "/" + name + ".bin", std::string("\x06\x03\x00\x00", 4) + file);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_gguf_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
