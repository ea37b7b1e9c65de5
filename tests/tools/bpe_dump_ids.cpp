// Interop helper (scripts/interop.sh): encodes a list of byte strings with lorazip's byte-level BPE
// and prints the ids, so a script can compare them with llama.cpp's. Not a test by itself.
// Usage: bpe_dump_ids [--native | --context TEMPLATE] VOCAB INPUTS.jsonl OUT.jsonl
//   --native: the ids the codec codes (Tokenizer::encode_native: a SentencePiece model trained with a
//   dummy prefix sees " " + text), as scripts/interop_hf.py compares them with transformers'
//   --context: each input is a prompt; the ids are the context conditioned coding reads for it,
//   rendered by gen/context.h with TEMPLATE (auto, chatml, plain) for the base VOCAB
//   (scripts/interop_chat_template.py compares them with the GGUF's own Jinja template); an input
//   {"turns": [{"role": R, "hex": H}...], "role": R} is a conversation's next turn instead, its ids
//   the context a conversation archive codes that turn given (ContextRenderer::turn_context)
//   VOCAB: a GGUF file, scripts/export_gguf_vocab.py output, a tokenizer.json or a tokenizer.model
//   INPUTS.jsonl: one {"hex": "<bytes as hex>"} per line; OUT.jsonl: one {"ids": [...]} per line.
// Prints the encode throughput to stderr (bytes / seconds of encode calls only).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "gen/context.h"
#include "model/bpe_tokenizer.h"
#include "model/gguf_tokenizer.h"
#include "model/tokenizer.h"

namespace {

std::string unhex(const std::string& h) {
  if (h.size() % 2) throw std::runtime_error("odd hex length");
  auto v = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::runtime_error("bad hex digit");
  };
  std::string out(h.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<char>(v(h[2 * i]) * 16 + v(h[2 * i + 1]));
  return out;
}

lorazip::Tokenizer load(const std::string& path) {
  if (lorazip::is_gguf_path(path)) return lorazip::load_tokenizer(path);
  const std::string bytes = lorazip::read_file(path);
  if (bytes.empty() || bytes[0] != '{') return lorazip::Tokenizer::from_bytes(bytes, path);  // tokenizer.model
  const nlohmann::json j = nlohmann::json::parse(bytes);
  if (!j.contains("tokens")) return lorazip::Tokenizer::from_bytes(bytes, path);
  lorazip::BpeDefinition d;
  d.tokens = j.at("tokens").get<std::vector<std::string>>();
  d.types = j.at("types").get<std::vector<int32_t>>();
  d.merges = j.at("merges").get<std::vector<std::string>>();
  d.bos_id = j.at("bos").get<int32_t>();
  d.eos_id = j.at("eos").get<int32_t>();
  d.add_bos = j.at("add_bos").get<bool>();
  d.pre = j.at("pre").get<std::string>();
  return lorazip::Tokenizer::from_bpe(std::move(d), path);
}

}  // namespace

int main(int argc, char** argv) {
  const bool native = argc > 1 && std::string(argv[1]) == "--native";
  if (native) {
    --argc;
    ++argv;
  }
  std::string context_template;
  if (argc > 2 && std::string(argv[1]) == "--context") {
    context_template = argv[2];
    argc -= 2;
    argv += 2;
  }
  if (argc != 4) {
    std::cerr << "usage: bpe_dump_ids [--native | --context TEMPLATE] VOCAB(.gguf|.json|.model) INPUTS.jsonl OUT.jsonl\n";
    return 2;
  }
  try {
    const lorazip::Tokenizer tok = load(argv[1]);
    std::ifstream in(argv[2]);
    if (!in) throw std::runtime_error(std::string("cannot read ") + argv[2]);
    std::ofstream out(argv[3]);
    if (!out) throw std::runtime_error(std::string("cannot write ") + argv[3]);
    std::optional<lorazip::gen::ContextRenderer> renderer;
    if (!context_template.empty()) renderer.emplace(argv[1], tok, lorazip::gen::parse_context_template(context_template));
    std::string line;
    size_t bytes = 0, tokens = 0, bad = 0;
    double seconds = 0;
    while (std::getline(in, line)) {
      const std::string text = unhex(nlohmann::json::parse(line).at("hex").get<std::string>());
      const auto t0 = std::chrono::steady_clock::now();
      bool prefixed = false;
      if (renderer && nlohmann::json::parse(line).contains("turns")) {
        // A conversation's next turn: {"turns": [{"role", "hex"}...], "role": ROLE, "hex": ""}.
        const nlohmann::json j = nlohmann::json::parse(line);
        std::vector<lorazip::gen::ChatMessage> before;
        for (const auto& t : j.at("turns")) before.push_back({t.at("role").get<std::string>(), unhex(t.at("hex").get<std::string>())});
        out << nlohmann::json{{"ids", renderer->turn_context(before, j.at("role").get<std::string>())}, {"template", renderer->template_name()}}.dump()
            << "\n";
        continue;
      }
      if (renderer) {
        const auto r = renderer->render(text);
        out << nlohmann::json{{"ids", r.tokens}, {"template", r.template_name}}.dump() << "\n";
        continue;
      }
      const std::vector<int32_t> ids = native ? tok.encode_native(text, &prefixed) : tok.encode(text);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      bytes += text.size();
      tokens += ids.size();
      if ((native ? tok.decode_native(ids.data(), ids.size(), prefixed) : tok.decode(ids)) != text) ++bad;
      out << nlohmann::json{{"ids", ids}}.dump() << "\n";
    }
    std::fprintf(stderr, "[bpe_dump_ids] %zu bytes -> %zu tokens in %.3f s of encode (%.2f MB/s); %zu failed to round-trip\n",
                 bytes, tokens, seconds, seconds > 0 ? bytes / seconds / 1e6 : 0.0, bad);
    return bad ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "bpe_dump_ids: " << e.what() << "\n";
    return 1;
  }
}
