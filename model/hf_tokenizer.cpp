// tokenizer_config.json and special_tokens_map.json for the model directories lorazip writes.
#include "model/hf_tokenizer.h"

#include <nlohmann/json.hpp>

namespace lorazip {

std::map<std::string, std::string> hf_tokenizer_files(const Tokenizer& tok, int64_t model_max_length) {
  using nlohmann::json;
  auto text_of = [&](int id) -> json { return id >= 0 ? json(tok.token_text(id)) : json(nullptr); };
  json special = json::object();
  if (tok.bos_id() >= 0) special["bos_token"] = tok.token_text(tok.bos_id());
  if (tok.eos_id() >= 0) special["eos_token"] = tok.token_text(tok.eos_id());
  if (tok.unk_id() >= 0) special["unk_token"] = tok.token_text(tok.unk_id());

  json config = {{"bos_token", text_of(tok.bos_id())},
                 {"eos_token", text_of(tok.eos_id())},
                 {"unk_token", text_of(tok.unk_id())},
                 {"pad_token", nullptr},
                 {"add_bos_token", tok.bos_id() >= 0},
                 {"add_eos_token", false},
                 {"clean_up_tokenization_spaces", false},
                 {"model_max_length", model_max_length}};
  if (tok.is_bpe()) {
    config["tokenizer_class"] = "PreTrainedTokenizerFast";
  } else {
    // transformers 4.x's fast Llama tokenizer prepends "\u2581" unless add_prefix_space says not to;
    // the slow one with legacy = true encodes as SentencePiece does (its own dummy-prefix flag).
    config["tokenizer_class"] = "LlamaTokenizer";
    config["add_prefix_space"] = tok.trained_with_dummy_prefix();
    config["legacy"] = true;
    config["spaces_between_special_tokens"] = false;
    config["sp_model_kwargs"] = json::object();
  }
  return {{"tokenizer_config.json", config.dump(2) + "\n"}, {"special_tokens_map.json", special.dump(2) + "\n"}};
}

}  // namespace lorazip
