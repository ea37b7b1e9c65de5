// The evaluation report: per-domain bits for the base and each adapter (ideal code length and,
// for a sample of documents, the real coded size), the cross-domain matrix, per-document routing
// (what `compress -A` picks), and classical compressors on the same documents. Torch-free: this
// file only holds, derives and writes the numbers (Markdown, JSON, CSV, SVG).
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace lorazip {

struct DomainResult {
  std::string domain;
  std::string corpus;  // "test" split of the token store, or the name of an extra corpus
  int64_t docs = 0, tokens = 0, bytes = 0;

  double base_bits = 0;                    // ideal code length of all docs under the base (the coder's W)
  // The two chunk modes under the base (codec/lm_codec.h): W = context_tokens (the coder's setting,
  // = base_bits) and W = 0 (independent chunks), with the scoring time of each (teacher-forced).
  int64_t context_tokens = 0;
  int64_t long_docs = 0;                   // documents with more than one chunk (the only ones W changes)
  double base_bits_independent = 0;
  double base_seconds = 0, base_independent_seconds = 0;
  std::map<std::string, double> adapter_bits;  // adapter domain -> ideal bits on these docs
  std::string own_adapter;                 // adapter trained on this domain ("" if none)
  double routed_bits = 0;                  // per document, the best of base and every adapter
  std::map<std::string, int64_t> routed_choice;  // "base" / adapter -> documents routed to it
  // Routing by prompt (cluster/router.h): the ideal bits of each document under the adapter its
  // prompt picks; NaN when not measured (no router, or documents without prompts).
  double prompt_routed_bits = NAN;
  std::map<std::string, int64_t> prompt_routed_choice;  // adapter -> documents routed to it
  // Conditioned coding (codec/lm_codec.h): each document coded given its prompt, rendered by
  // `context_template`; NaN / empty when not measured (a document of the row has no prompt).
  double base_bits_given = NAN;
  std::map<std::string, double> adapter_bits_given;  // adapter domain -> ideal bits given the prompts
  int64_t context_tokens_given = 0;                  // context-window tokens read, all documents
  std::string context_template;
  // The same records stored whole by the classical codecs: each record alone as the JSONL line
  // {"prompt": ..., "text": ...} (name -> bytes, all records), and the prompts' bytes; empty / 0
  // when not measured (eval.classical off, or no conditioned columns).
  std::map<std::string, int64_t> classical_records_given;
  int64_t prompt_bytes_given = 0;
  double own_adapter_bits_given() const;  // base_bits_given when there is no own adapter

  // Real coded size on a sample of documents (each compressed alone as a lorazip file).
  int64_t sample_docs = 0, sample_tokens = 0, sample_bytes = 0;
  double sample_base_ideal = 0, sample_adapter_ideal = 0;  // bits
  int64_t sample_base_file = 0, sample_adapter_file = 0;   // container bytes, all sample docs
  int64_t sample_base_payload = 0, sample_adapter_payload = 0;
  // The same sample documents as one lorazip archive (runtime/archive_io.h) with the own adapter:
  // the whole file's bytes (header, members, index, footer); 0 when not measured.
  int64_t sample_archive_bytes = 0;
  bool sample_roundtrip_ok = true;  // every sample file and archive member decoded to its document

  // Classical compressors: name -> bytes, every document compressed alone / all concatenated.
  std::map<std::string, int64_t> classical_per_doc, classical_concat;
  // zstd-19 per document with a dictionary (codec/classical.h) trained on the domain's training
  // documents: bytes, and the dictionary's size; -1 where there is no training split to train on.
  int64_t zstd_dict_per_doc = -1, zstd_dict_bytes = 0;

  double bits_per_token(double bits) const { return tokens ? bits / tokens : 0; }
  double bits_per_byte(double bits) const { return bytes ? bits / bytes : 0; }
  double own_adapter_bits() const;  // base_bits when there is no own adapter
  double savings() const;           // base bits / own-adapter bits
  std::string best_classical_per_doc() const;
};

struct Report {
  std::string base_name, base_fingerprint, tokenizer_fingerprint;
  std::vector<std::string> adapters;  // adapter domains evaluated
  int64_t vocab_size = 0;             // the tokenizer's V, for the paper's bits / (tokens x log2 V)
  std::vector<DomainResult> domains;
  double seconds = 0;

  nlohmann::json to_json() const;
  std::string to_markdown() const;
  std::string to_csv() const;
  std::string to_svg() const;
  // Writes report.json, report.csv, report.md and report.svg into dir (atomically each).
  void write(const std::string& dir) const;
};

}  // namespace lorazip
