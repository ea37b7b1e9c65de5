// GGUF Llama models and LoRA adapters with libtorch: a tiny HF model saved as GGUF loads back to
// the same weights, fingerprint and logits; q/k rows are in llama.cpp's order in the file (checked
// against the view/transpose formula) and restored on load; a Q8_0 file loads to its dequantized
// values; malformed models are refused naming the tensor; the llama.cpp LoRA export has
// llama.cpp's names, shapes, alpha and permutation, and adds the same delta to the GGUF weights.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "adapters/adapter.h"
#include "adapters/gguf_lora.h"
#include "codec/engine/blocks.h"
#include "model/checkpoint.h"
#include "model/gguf.h"
#include "model/gguf_llama.h"
#include "model/gguf_model.h"
#include "model/gguf_quant.h"
#include "model/safetensors.h"

using namespace lorazip;
namespace fs = std::filesystem;

namespace {

LlamaConfig tiny(bool tie, bool bias = false) {
  LlamaConfig c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 32;
  c.rope_theta = 100000.0;
  c.tie_word_embeddings = tie;
  c.attention_bias = bias;
  c.mlp_bias = bias;
  return c;
}

LlamaForCausalLM random_model(const LlamaConfig& c, uint64_t seed) {
  LlamaForCausalLM m(c);
  m->init_weights(seed, 0.2);
  torch::NoGradGuard g;
  for (auto& kv : m->named_parameters()) {
    // norms and biases away from their defaults too, so that every tensor is checked
    if (kv.value().dim() == 1) kv.value().uniform_(0.5, 1.5);
  }
  m->eval();
  return m;
}

class GgufModel : public ::testing::Test {
 protected:
  void SetUp() override {
    root = (fs::temp_directory_path() / ("lorazip_ggufm_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(root);
    fs::create_directories(root);
  }
  void TearDown() override { fs::remove_all(root); }
  std::string root;
};

torch::Tensor tokens() { return torch::tensor({{3, 17, 5, 39, 0, 22, 8, 1}}, torch::kLong); }

std::string load_error(const std::string& path) {
  try {
    load_gguf_model(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "<loaded>";
}

// A copy of `src` with tensors replaced / dropped / added by `edit`, metadata kept.
template <class Edit>
void rewrite(const std::string& src, const std::string& dst, Edit edit) {
  GgufFile f = GgufFile::open(src);
  GgufWriter w;
  for (const auto& kv : f.metadata()) w.add(kv.first, kv.second);
  for (const auto& t : f.tensors()) edit(w, f, t);
  w.write(dst);
}

bool has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST_F(GgufModel, SavedHfModelLoadsToTheSameWeightsFingerprintAndLogits) {
  for (bool tie : {true, false})
    for (bool bias : {false, true}) {
      LlamaForCausalLM m = random_model(tiny(tie, bias), 7);
      const std::string path = root + "/m.gguf";
      save_gguf_model(m, path);
      LlamaForCausalLM back = load_gguf_model(path);
      back->eval();
      EXPECT_EQ(back->config().tie_word_embeddings, tie);
      EXPECT_EQ(back->config().attention_bias, bias);
      EXPECT_EQ(back->config().rope_theta, 100000.0);
      auto pa = m->named_parameters(), pb = back->named_parameters();
      ASSERT_EQ(pa.size(), pb.size());
      for (const auto& kv : pa) EXPECT_TRUE(torch::equal(kv.value(), pb[kv.key()])) << kv.key();
      EXPECT_EQ(model_fingerprint(back), model_fingerprint(m));
      torch::NoGradGuard g;
      EXPECT_TRUE(torch::equal(back->forward(tokens()), m->forward(tokens())));
    }
}

TEST_F(GgufModel, SameLogitsAsTheSafetensorsOriginal) {
  LlamaForCausalLM m = random_model(tiny(true), 11);
  save_hf_model(m, root + "/hf", "");
  LlamaForCausalLM hf = load_hf_model(root + "/hf");
  save_gguf_model(hf, root + "/m.gguf");
  LlamaForCausalLM g = load_gguf_model(root + "/m.gguf");
  hf->eval();
  g->eval();
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(g->forward(tokens()), hf->forward(tokens())));
  // F16 weights: the logits of the same model with its 2-D weights rounded to half precision.
  save_gguf_model(hf, root + "/h.gguf", ggml_type::F16);
  LlamaForCausalLM h = load_gguf_model(root + "/h.gguf");
  h->eval();
  for (auto& kv : hf->named_parameters())
    if (kv.value().dim() == 2) kv.value().copy_(kv.value().to(torch::kHalf).to(torch::kFloat));
  EXPECT_TRUE(torch::equal(h->forward(tokens()), hf->forward(tokens())));
}

TEST_F(GgufModel, QkRowsAreInLlamaCppOrderInTheFile) {
  LlamaConfig c = tiny(true);
  LlamaForCausalLM m = random_model(c, 3);
  save_gguf_model(m, root + "/m.gguf");
  GgufFile f = GgufFile::open(root + "/m.gguf");
  const int64_t hd = c.resolved_head_dim();
  auto params = m->named_parameters();
  // llama.cpp's converter: w.reshape(n_head, 2, hd / 2, cols).swapaxes(1, 2).reshape(rows, cols).
  auto llama_order = [&](const torch::Tensor& w, int64_t heads) {
    return w.reshape({heads, 2, hd / 2, w.size(1)}).transpose(1, 2).reshape({w.size(0), w.size(1)});
  };
  struct Case {
    const char* gguf;
    const char* hf;
    int64_t heads;
  };
  for (const Case& k : {Case{"blk.1.attn_q.weight", "model.layers.1.self_attn.q_proj.weight", c.num_attention_heads},
                        Case{"blk.1.attn_k.weight", "model.layers.1.self_attn.k_proj.weight", c.num_key_value_heads}}) {
    const GgufTensorInfo& t = f.tensor(k.gguf);
    std::vector<float> v = f.dequantize(t);
    torch::Tensor file = torch::from_blob(v.data(), t.shape(), torch::kFloat).clone();
    EXPECT_TRUE(torch::equal(file, llama_order(params[k.hf].detach(), k.heads))) << k.gguf;
    EXPECT_FALSE(torch::equal(file, params[k.hf].detach())) << k.gguf << " was not permuted";
  }
  // v is not permuted
  const GgufTensorInfo& t = f.tensor("blk.1.attn_v.weight");
  std::vector<float> v = f.dequantize(t);
  EXPECT_TRUE(torch::equal(torch::from_blob(v.data(), t.shape(), torch::kFloat), params["model.layers.1.self_attn.v_proj.weight"].detach()));
}

TEST_F(GgufModel, Q8_0WeightsLoadToTheirDequantizedValues) {
  LlamaConfig c = tiny(false);
  LlamaForCausalLM m = random_model(c, 5);
  save_gguf_model(m, root + "/f.gguf");
  // Re-encode every 2-D weight as Q8_0 blocks built here: d = max|x| / 127 rounded to f16, q = round(x / d).
  std::map<std::string, std::vector<float>> expect;  // GGUF name -> values the loader must produce (file order)
  rewrite(root + "/f.gguf", root + "/q.gguf", [&](GgufWriter& w, const GgufFile& f, const GgufTensorInfo& t) {
    std::vector<float> x = f.dequantize(t);
    if (t.ne.size() != 2) {
      w.add_tensor(t.name, t.ne, t.type, std::string(f.tensor_bytes(t)));
      return;
    }
    std::string bytes;
    std::vector<float>& e = expect[t.name];
    for (size_t b = 0; b < x.size(); b += 32) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
      const uint16_t dh = torch::tensor(amax / 127.0f).to(torch::kHalf).item<c10::Half>().x;
      const float d = half_to_float(dh);
      bytes.append(reinterpret_cast<const char*>(&dh), 2);
      for (int j = 0; j < 32; ++j) {
        const int q = d > 0 ? static_cast<int>(std::lround(x[b + j] / d)) : 0;
        const int8_t qc = static_cast<int8_t>(std::max(-127, std::min(127, q)));
        bytes.push_back(static_cast<char>(qc));
        e.push_back(d * static_cast<float>(qc));
      }
    }
    w.add_tensor(t.name, t.ne, ggml_type::Q8_0, bytes);
  });
  LlamaForCausalLM q = load_gguf_model(root + "/q.gguf");
  auto params = q->named_parameters();
  for (const auto& kv : expect) {
    const std::string hf = hf_tensor_name(kv.first);
    torch::Tensor file_order = torch::from_blob(const_cast<float*>(kv.second.data()), params[hf].sizes(), torch::kFloat).clone();
    torch::Tensor want = file_order;
    if (int64_t heads = qk_permute_heads(hf, c)) {
      want = torch::empty_like(file_order);
      permute_qk_rows(file_order.data_ptr<float>(), want.data_ptr<float>(), want.size(0), want.size(1) * sizeof(float), heads, false);
    }
    EXPECT_TRUE(torch::equal(params[hf].detach(), want)) << kv.first;
    EXPECT_LT((params[hf].detach() - m->named_parameters()[hf].detach()).abs().max().item<float>(), 0.01f) << kv.first;
  }
}

TEST_F(GgufModel, MalformedModelsRefusedNamingTheTensor) {
  LlamaForCausalLM m = random_model(tiny(true), 1);
  const std::string ok = root + "/ok.gguf";
  save_gguf_model(m, ok);
  auto copy_all = [](GgufWriter& w, const GgufFile& f, const GgufTensorInfo& t) {
    w.add_tensor(t.name, t.ne, t.type, std::string(f.tensor_bytes(t)));
  };
  rewrite(ok, root + "/missing.gguf", [&](GgufWriter& w, const GgufFile& f, const GgufTensorInfo& t) {
    if (t.name != "blk.1.ffn_up.weight") copy_all(w, f, t);
  });
  std::string e = load_error(root + "/missing.gguf");
  EXPECT_TRUE(has(e, "'blk.1.ffn_up.weight'") && has(e, "missing") && has(e, "missing.gguf")) << e;

  rewrite(ok, root + "/extra.gguf", [&](GgufWriter& w, const GgufFile& f, const GgufTensorInfo& t) {
    copy_all(w, f, t);
    if (t.name == "output_norm.weight") w.add_tensor("blk.0.attn_sinks.weight", t.ne, t.type, std::string(f.tensor_bytes(t)));
  });
  e = load_error(root + "/extra.gguf");
  EXPECT_TRUE(has(e, "unexpected tensor 'blk.0.attn_sinks.weight'")) << e;

  rewrite(ok, root + "/shape.gguf", [&](GgufWriter& w, const GgufFile& f, const GgufTensorInfo& t) {
    if (t.name == "blk.0.attn_v.weight") w.add_tensor(t.name, {t.ne[1], t.ne[0]}, t.type, std::string(f.tensor_bytes(t)));
    else copy_all(w, f, t);
  });
  e = load_error(root + "/shape.gguf");
  EXPECT_TRUE(has(e, "'blk.0.attn_v.weight'") && has(e, "shape")) << e;

  GgufFile src = GgufFile::open(ok);
  GgufWriter w;
  for (const auto& kv : src.metadata())
    w.add(kv.first, kv.first == "general.architecture" ? GgufValue::of_string("qwen2") : kv.second);
  for (const auto& t : src.tensors()) copy_all(w, src, t);
  w.write(root + "/arch.gguf");
  e = load_error(root + "/arch.gguf");
  EXPECT_TRUE(has(e, "architecture 'qwen2'") && has(e, "arch.gguf")) << e;
}

TEST_F(GgufModel, UnsupportedTypeRefusedByNameBeforeLoading) {
  // A Q2_K tensor with the right shape: ffn_down of an intermediate-256 model has rows of 256.
  LlamaConfig c = tiny(true);
  c.intermediate_size = 256;
  LlamaForCausalLM m = random_model(c, 2);
  save_gguf_model(m, root + "/ok.gguf");
  rewrite(root + "/ok.gguf", root + "/q2k.gguf", [&](GgufWriter& w, const GgufFile& f, const GgufTensorInfo& t) {
    if (t.name == "blk.0.ffn_down.weight") w.add_tensor(t.name, t.ne, 10, std::string(84 * t.ne[1], '\0'));
    else w.add_tensor(t.name, t.ne, t.type, std::string(f.tensor_bytes(t)));
  });
  const std::string e = load_error(root + "/q2k.gguf");
  EXPECT_TRUE(has(e, "'blk.0.ffn_down.weight'") && has(e, "Q2_K (type 10)") &&
              has(e, "supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K"))
      << e;
}

TEST_F(GgufModel, EveryWeightTypeSavesWithinTheQuantizersBound) {
  // 2-D weights quantized by save_gguf_model load back within quantize_error_bound of the
  // original (taken with the whole tensor's largest |x|, which bounds every block's); norms and
  // biases stay F32 and exact. The K-quants need rows of 256: a model of hidden size 256.
  LlamaConfig wide = tiny(false, true);
  wide.hidden_size = 256;
  wide.intermediate_size = 256;
  wide.num_hidden_layers = 1;
  struct Case {
    uint32_t type;
    const LlamaConfig* c;
  };
  const LlamaConfig small = tiny(false, true);
  for (const Case& k : {Case{ggml_type::BF16, &small}, Case{ggml_type::Q8_0, &small}, Case{ggml_type::Q4_0, &small},
                        Case{ggml_type::Q4_1, &small}, Case{ggml_type::Q4_K, &wide}, Case{ggml_type::Q5_K, &wide},
                        Case{ggml_type::Q6_K, &wide}}) {
    engine::WeightKind kind;
    ASSERT_TRUE(engine::kind_from_ggml(k.type, &kind));
    LlamaForCausalLM m = random_model(*k.c, 4);
    const std::string path = root + "/m.gguf";
    save_gguf_model(m, path, k.type);
    const GgufFile f = GgufFile::open(path);
    LlamaForCausalLM back = load_gguf_model(f);
    auto pb = back->named_parameters();
    for (const auto& kv : m->named_parameters()) {
      const torch::Tensor a = kv.value().detach(), b = pb[kv.key()].detach();
      EXPECT_EQ(f.tensor(gguf_tensor_name(kv.key())).type, a.dim() == 2 ? k.type : ggml_type::F32) << kv.key();
      if (a.dim() != 2) {
        EXPECT_TRUE(torch::equal(a, b)) << kv.key();
        continue;
      }
      const double bound = quantize_error_bound(kind, a.abs().max().item<double>());
      const double err = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
      EXPECT_LE(err, bound) << ggml_type_label(k.type) << " " << kv.key();
      EXPECT_GT(err, 0.0) << ggml_type_label(k.type) << " " << kv.key() << " was not quantized";
    }
  }
  // Rows of 32 are not whole K-quant super-blocks; a type lorazip does not dequantize is refused.
  LlamaForCausalLM m = random_model(small, 4);
  try {
    save_gguf_model(m, root + "/k.gguf", ggml_type::Q4_K);
    FAIL() << "Q4_K accepted rows of 32";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(has(e.what(), "save_gguf_model: GgufWriter: tensor 'token_embd.weight' (Q4_K): row length ne[0] = 32 is "
                              "not a multiple of Q4_K's block size 256"))
        << e.what();
  }
  EXPECT_FALSE(fs::exists(root + "/k.gguf"));
  EXPECT_THROW(save_gguf_model(m, root + "/k.gguf", 10), std::invalid_argument);
}

TEST_F(GgufModel, LoraExportHasLlamaCppNamesShapesAlphaAndPermutation) {
  LlamaConfig c = tiny(true);
  LlamaForCausalLM m = random_model(c, 9);
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  LoraAdapter a(m, lc);
  {
    torch::NoGradGuard g;
    for (auto& t : a.parameters()) t.normal_(0.0, 0.3);  // B too, so the delta is not zero
  }
  save_gguf_model(m, root + "/base.gguf");
  save_gguf_lora(a.peft_modules(), c, root + "/lora.gguf", "math");
  GgufFile f = GgufFile::open(root + "/lora.gguf");
  GgufFile base = GgufFile::open(root + "/base.gguf");
  EXPECT_EQ(f.get_string("general.type"), "adapter");
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_string("adapter.type"), "lora");
  ASSERT_EQ(f.get("adapter.lora.alpha").type, GgufValueType::F32);
  EXPECT_EQ(f.get_f32("adapter.lora.alpha"), 8.0f);
  EXPECT_EQ(f.tensors().size(), 2u * 7u * 2u);
  auto sd = a.state_dict();
  auto params = m->named_parameters();
  for (const std::string& mod : a.modules()) {
    const std::string g = gguf_module_name(mod);
    const GgufTensorInfo& ta = f.tensor(g + ".weight.lora_a");
    const GgufTensorInfo& tb = f.tensor(g + ".weight.lora_b");
    torch::Tensor A = sd.at(peft_key(mod, "lora_A")), B = sd.at(peft_key(mod, "lora_B"));
    // llama.cpp's shape rules: lora_a ne [in, r], lora_b ne [r, out]; the base tensor exists.
    EXPECT_EQ(ta.ne, (std::vector<int64_t>{A.size(1), A.size(0)})) << g;
    EXPECT_EQ(tb.ne, (std::vector<int64_t>{B.size(1), B.size(0)})) << g;
    EXPECT_EQ(ta.type, ggml_type::F32);
    const GgufTensorInfo& tw = base.tensor(g + ".weight");
    EXPECT_EQ(tw.ne[0], ta.ne[0]) << g;
    EXPECT_EQ(tw.ne[1], tb.ne[1]) << g;
    // What llama.cpp computes on the GGUF base: W_gguf + alpha / r * B_gguf A equals the
    // PEFT merge W + scaling * B A, in the file's row order.
    std::vector<float> va = f.dequantize(ta), vb = f.dequantize(tb), vw = base.dequantize(tw);
    torch::Tensor Ag = torch::from_blob(va.data(), ta.shape(), torch::kFloat);
    torch::Tensor Bg = torch::from_blob(vb.data(), tb.shape(), torch::kFloat);
    torch::Tensor Wg = torch::from_blob(vw.data(), tw.shape(), torch::kFloat);
    EXPECT_TRUE(torch::equal(Ag, A.detach())) << g;
    const std::string hf = mod + ".weight";
    torch::Tensor merged_hf = params[hf].detach() + a.scaling(mod) * torch::matmul(B.detach(), A.detach());
    torch::Tensor merged_gguf = Wg + (8.0 / 4.0) * torch::matmul(Bg, Ag);
    torch::Tensor want = merged_hf.contiguous();
    if (int64_t heads = qk_permute_heads(hf, c)) {
      want = torch::empty_like(merged_hf);
      torch::Tensor src = merged_hf.contiguous();
      permute_qk_rows(src.data_ptr<float>(), want.data_ptr<float>(), src.size(0), src.size(1) * sizeof(float), heads, true);
      EXPECT_FALSE(torch::equal(Bg, B.detach())) << g << ": lora_b of q/k must be permuted";
    } else {
      EXPECT_TRUE(torch::equal(Bg, B.detach())) << g;
    }
    EXPECT_TRUE(torch::allclose(merged_gguf, want, 1e-5, 1e-5)) << g;
  }
}
