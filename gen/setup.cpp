// load_chat_model: GGUF -> engine model + tokenizer + chat template (see setup.h).
#include "gen/setup.h"

#include <filesystem>
#include <stdexcept>

#include "runtime/model_setup.h"
#include "model/gguf.h"

namespace lorazip::gen {

ChatModel load_chat_model(const std::string& path, CodecIdentity* identity_out) {
  if (!is_gguf_path(path))
    throw std::runtime_error("'" + path + "' is not a GGUF file: generation needs a GGUF instruct model with a "
                             "tokenizer.chat_template (e.g. scripts/fetch_smollm2.sh)");
  ChatModel m;
  m.name = std::filesystem::path(path).filename().string();
  m.chat = ChatTemplate::from_gguf(GgufFile::open(path));
  LoadedModel base = load_model(path);
  m.model = base.engine_model();
  if (identity_out) *identity_out = identity_for(base, nullptr);
  m.tokenizer = std::shared_ptr<const Tokenizer>(std::move(base.tokenizer));
  return m;
}

}  // namespace lorazip::gen
