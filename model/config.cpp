// LlamaConfig: the model's sizes, read strictly from lorazip's YAML or leniently from a Hugging Face
// config.json (transformers 4.x and v5 files), written back as a config.json that transformers
// loads as LlamaForCausalLM.
#include "model/config.h"

#include <cmath>
#include <set>
#include <stdexcept>

#include "common/log.h"
#include "common/yaml_strict.h"

namespace lorazip {
namespace {

using nlohmann::json;

// Keys of a Llama config.json that we read or knowingly ignore; anything else is logged.
const std::set<std::string>& known_hf_keys() {
  static const std::set<std::string> keys = {
      "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
      "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
      "max_position_embeddings", "initializer_range", "rms_norm_eps", "use_cache", "pad_token_id",
      "bos_token_id", "eos_token_id", "pretraining_tp", "tie_word_embeddings", "rope_theta",
      "rope_scaling", "rope_parameters", "attention_bias", "attention_dropout", "mlp_bias",
      "torch_dtype", "dtype", "transformers_version", "_name_or_path", "name_or_path",
      "output_attentions", "output_hidden_states", "return_dict", "is_encoder_decoder",
      "tokenizer_class", "max_length", "bad_words_ids", "do_sample", "num_beams", "temperature",
      "top_k", "top_p", "decoder_start_token_id", "sep_token_id", "torchscript",
      "use_return_dict", "chunk_size_feed_forward", "problem_type", "id2label", "label2id",
      "task_specific_params", "finetuning_task", "prefix", "cross_attention_hidden_size",
      "add_cross_attention", "is_decoder", "tie_encoder_decoder", "pruned_heads",
      "tf_legacy_loss", "use_bfloat16"};
  return keys;
}

[[noreturn]] void bad_key(const std::string& source, const std::string& key, const std::string& msg) {
  throw std::runtime_error(source + ": config key '" + key + "': " + msg);
}

int64_t get_int(const json& j, const std::string& key, const std::string& source) {
  const json& v = j.at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  // Some writers emit integral floats (64.0); accept those, nothing else.
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  bad_key(source, key, "expected an integer, got " + v.dump());
}

double get_double(const json& j, const std::string& key, const std::string& source) {
  const json& v = j.at(key);
  if (!v.is_number()) bad_key(source, key, "expected a number, got " + v.dump());
  return v.get<double>();
}

bool get_bool(const json& j, const std::string& key, const std::string& source) {
  const json& v = j.at(key);
  if (!v.is_boolean()) bad_key(source, key, "expected true or false, got " + v.dump());
  return v.get<bool>();
}

bool present(const json& j, const std::string& key) { return j.contains(key) && !j.at(key).is_null(); }

// Only plain RoPE is implemented; "default" is the name transformers gives it.
void check_rope_type(const json& rope, const std::string& key, const std::string& source) {
  if (!rope.is_object()) bad_key(source, key, "expected an object or null, got " + rope.dump());
  std::string type;
  for (const char* k : {"rope_type", "type"}) {
    if (rope.contains(k) && rope.at(k).is_string()) type = rope.at(k).get<std::string>();
  }
  if (type.empty() && key == "rope_parameters") type = "default";
  if (type != "default")
    bad_key(source, key,
            "RoPE variant '" + (type.empty() ? rope.dump() : type) +
                "' is not supported (lorazip implements only the default rotary embedding)");
}

}  // namespace

void LlamaConfig::validate(const std::string& source) const {
  auto fail = [&](const std::string& field, const std::string& msg) {
    throw std::invalid_argument(source + ": " + field + ": " + msg);
  };
  if (vocab_size <= 0) fail("vocab_size", "must be positive");
  if (hidden_size <= 0) fail("hidden_size", "must be positive");
  if (intermediate_size <= 0) fail("intermediate_size", "must be positive");
  if (num_hidden_layers <= 0) fail("num_hidden_layers", "must be positive");
  if (num_attention_heads <= 0) fail("num_attention_heads", "must be positive");
  if (num_key_value_heads <= 0) fail("num_key_value_heads", "must be positive");
  if (num_attention_heads % num_key_value_heads != 0)
    fail("num_key_value_heads", std::to_string(num_key_value_heads) + " does not divide num_attention_heads = " +
                                    std::to_string(num_attention_heads));
  if (head_dim < 0) fail("head_dim", "must be positive, or 0 for hidden_size / num_attention_heads");
  if (head_dim == 0 && hidden_size % num_attention_heads != 0)
    fail("num_attention_heads", std::to_string(num_attention_heads) + " does not divide hidden_size = " +
                                    std::to_string(hidden_size) + " (or set head_dim)");
  if (resolved_head_dim() % 2 != 0)
    fail("head_dim", "must be even for rotary embeddings, got " + std::to_string(resolved_head_dim()));
  if (max_position_embeddings <= 0) fail("max_position_embeddings", "must be positive");
  if (!(rms_norm_eps > 0.0) || !std::isfinite(rms_norm_eps)) fail("rms_norm_eps", "must be a positive number");
  if (!(rope_theta > 0.0) || !std::isfinite(rope_theta)) fail("rope_theta", "must be a positive number");
  if (bos_token_id >= vocab_size) fail("bos_token_id", "must be below vocab_size (or -1 for none)");
  if (eos_token_id >= vocab_size) fail("eos_token_id", "must be below vocab_size (or -1 for none)");
}

LlamaConfig LlamaConfig::from_hf_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw std::runtime_error(source + ": expected a JSON object");
  LlamaConfig c;
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "rms_norm_eps"}) {
    if (!present(j, key))
      throw std::runtime_error(source + ": required config key '" + key + "' is missing");
  }
  if (present(j, "model_type") && j.at("model_type") != "llama")
    bad_key(source, "model_type", "expected \"llama\", got " + j.at("model_type").dump() +
                                      " (only the Llama architecture is implemented)");
  if (present(j, "hidden_act") && j.at("hidden_act") != "silu")
    bad_key(source, "hidden_act", "expected \"silu\", got " + j.at("hidden_act").dump());
  if (present(j, "pretraining_tp") && get_int(j, "pretraining_tp", source) != 1)
    bad_key(source, "pretraining_tp", "must be 1");

  c.vocab_size = get_int(j, "vocab_size", source);
  c.hidden_size = get_int(j, "hidden_size", source);
  c.intermediate_size = get_int(j, "intermediate_size", source);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", source);
  c.num_attention_heads = get_int(j, "num_attention_heads", source);
  c.rms_norm_eps = get_double(j, "rms_norm_eps", source);
  c.num_key_value_heads =
      present(j, "num_key_value_heads") ? get_int(j, "num_key_value_heads", source) : c.num_attention_heads;
  c.head_dim = present(j, "head_dim") ? get_int(j, "head_dim", source) : 0;
  c.max_position_embeddings =
      present(j, "max_position_embeddings") ? get_int(j, "max_position_embeddings", source) : 2048;
  c.tie_word_embeddings = present(j, "tie_word_embeddings") ? get_bool(j, "tie_word_embeddings", source) : false;
  c.attention_bias = present(j, "attention_bias") ? get_bool(j, "attention_bias", source) : false;
  c.mlp_bias = present(j, "mlp_bias") ? get_bool(j, "mlp_bias", source) : false;
  c.bos_token_id = j.contains("bos_token_id") ? (j.at("bos_token_id").is_null() ? -1 : get_int(j, "bos_token_id", source)) : 1;
  c.eos_token_id = 2;
  if (j.contains("eos_token_id")) {
    const json& e = j.at("eos_token_id");
    if (e.is_null()) {
      c.eos_token_id = -1;
    } else if (e.is_array()) {
      // A list of end tokens (Llama 3 style): the first is the one lorazip writes.
      if (e.empty()) c.eos_token_id = -1;
      else if (!e.at(0).is_number_integer()) bad_key(source, "eos_token_id", "expected integers, got " + e.dump());
      else c.eos_token_id = e.at(0).get<int64_t>();
    } else {
      c.eos_token_id = get_int(j, "eos_token_id", source);
    }
  }

  // rope_theta: transformers v5 keeps it in rope_parameters; classic files at the top level.
  c.rope_theta = 10000.0;
  if (present(j, "rope_theta")) c.rope_theta = get_double(j, "rope_theta", source);
  if (present(j, "rope_parameters")) {
    const json& rp = j.at("rope_parameters");
    check_rope_type(rp, "rope_parameters", source);
    if (present(rp, "rope_theta")) c.rope_theta = get_double(rp, "rope_theta", source + " rope_parameters");
  }
  if (present(j, "rope_scaling")) check_rope_type(j.at("rope_scaling"), "rope_scaling", source);

  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!known_hf_keys().count(it.key()))
      log_info(source + ": ignoring unknown config key '" + it.key() + "'");
  }
  try {
    c.validate(source);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());  // a bad file is a format problem, not a caller's mistake
  }
  return c;
}

nlohmann::json LlamaConfig::to_hf_json() const {
  json j;
  j["architectures"] = json::array({"LlamaForCausalLM"});
  j["model_type"] = "llama";
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = resolved_head_dim();
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = max_position_embeddings;
  j["initializer_range"] = 0.02;
  j["rms_norm_eps"] = rms_norm_eps;
  j["use_cache"] = true;
  j["pad_token_id"] = nullptr;
  j["bos_token_id"] = bos_token_id >= 0 ? json(bos_token_id) : json(nullptr);
  j["eos_token_id"] = eos_token_id >= 0 ? json(eos_token_id) : json(nullptr);
  j["pretraining_tp"] = 1;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["rope_theta"] = rope_theta;
  j["rope_scaling"] = nullptr;
  j["attention_bias"] = attention_bias;
  j["attention_dropout"] = 0.0;
  j["mlp_bias"] = mlp_bias;
  j["torch_dtype"] = "float32";
  return j;
}

LlamaConfig LlamaConfig::from_yaml(YamlMap& m) {
  LlamaConfig c;
  m.get("vocab_size", c.vocab_size);
  m.get("hidden_size", c.hidden_size);
  m.get("intermediate_size", c.intermediate_size);
  m.get("num_hidden_layers", c.num_hidden_layers);
  m.get("num_attention_heads", c.num_attention_heads);
  m.get("num_key_value_heads", c.num_key_value_heads);
  m.get("head_dim", c.head_dim);
  m.get("max_position_embeddings", c.max_position_embeddings);
  m.get("rms_norm_eps", c.rms_norm_eps);
  m.get("rope_theta", c.rope_theta);
  m.get("tie_word_embeddings", c.tie_word_embeddings);
  m.get("attention_bias", c.attention_bias);
  m.get("mlp_bias", c.mlp_bias);
  m.get("bos_token_id", c.bos_token_id);
  m.get("eos_token_id", c.eos_token_id);
  m.finish();
  std::string where = m.file() + (m.path().empty() ? "" : ": " + m.path());
  c.validate(where);
  return c;
}

LlamaConfig LlamaConfig::from_yaml_file(const std::string& path) {
  YamlMap m = YamlMap::load_file(path);
  return from_yaml(m);
}

int64_t LlamaConfig::num_parameters() const {
  const int64_t H = hidden_size, I = intermediate_size;
  const int64_t Hq = num_attention_heads * resolved_head_dim();
  const int64_t Hkv = num_key_value_heads * resolved_head_dim();
  int64_t per_layer = 2 * H                          // input / post-attention norms
                      + H * Hq + 2 * H * Hkv + Hq * H  // q, k, v, o
                      + 3 * H * I;                     // gate, up, down
  if (attention_bias) per_layer += Hq + 2 * Hkv + H;
  if (mlp_bias) per_layer += 2 * I + H;
  int64_t n = vocab_size * H + num_hidden_layers * per_layer + H;
  if (!tie_word_embeddings) n += vocab_size * H;
  return n;
}

}  // namespace lorazip
