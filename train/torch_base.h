// libtorch's side of a loaded base: its model for training and export --merged, the merge into a
// copy, and bridges from libtorch models to the engine (tests and benches that build models in
// libtorch). The coding path never needs this header.
#pragma once
#include <memory>
#include <string>

#include "codec/model_setup.h"
#include "model/llama.h"

namespace lorazip {

class LoraAdapter;

// libtorch's model of the base (loaded on first use, kept in base.torch_cache).
LlamaForCausalLM& torch_model(LoadedBase& base);

// The base with an adapter merged into its weights by libtorch (for `lorazip export --merged`), as
// a separate model; the base is left untouched.
LlamaForCausalLM merged_model(LoadedBase& base, const std::string& adapter_dir, AdapterEntry* entry_out);
LlamaForCausalLM clone_model(LlamaForCausalLM& model);

// A libtorch model on the engine, in arithmetic version 1: its parameters copied as float32, with
// `adapter` (nullptr: none) merged by the engine in version 1's fixed order. `model` is untouched.
std::shared_ptr<const engine::Model> engine_model(LlamaForCausalLM& model, const LoraAdapter* adapter = nullptr);
// The same weights as stored float32 for arithmetic version 2, with `adapter` as a side path.
std::shared_ptr<const engine::Model> engine_model_v2(LlamaForCausalLM& model, const LoraAdapter* adapter = nullptr);

}  // namespace lorazip
