// libtorch's side of a loaded base: its model for training, and bridges from libtorch models to
// the coding engine (tests and benches that build models in libtorch). Nothing on the coding path
// (codec/, the engine) includes this header; the coding-only build does not have it.
#pragma once
#include <memory>
#include <string>

#include "runtime/model_setup.h"
#include "model/llama.h"

namespace lorazip {

class LoraAdapter;

// libtorch's model of the base's weights (float32; a quantized GGUF dequantized with ggml's
// formulas), in eval mode. Each call loads one: the caller keeps it as long as it needs it.
LlamaForCausalLM load_torch_model(const LoadedModel& base);

// A libtorch model on the engine, in arithmetic version 1: its parameters copied as float32, with
// `adapter` (nullptr: none) merged by the engine's one LoRA delta. `model` is untouched.
std::shared_ptr<const engine::Model> engine_model(LlamaForCausalLM& model, const LoraAdapter* adapter = nullptr);
// The same weights as stored float32 for arithmetic version 2, with `adapter` as a side path.
std::shared_ptr<const engine::Model> engine_model_v2(LlamaForCausalLM& model, const LoraAdapter* adapter = nullptr);

}  // namespace lorazip
