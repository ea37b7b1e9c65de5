// A LoRA adapter as a llama.cpp LoRA GGUF (what `llama-cli --lora FILE` loads): metadata
// general.type = "adapter", general.architecture = "llama", adapter.type = "lora",
// adapter.lora.alpha (f32); per targeted projection `blk.N.<name>.weight.lora_a` (ne [in, r]) and
// `.lora_b` (ne [r, out]), F32, with lora_b of attn_q / attn_k in llama.cpp's row order.
#pragma once
#include <string>
#include <vector>

#include "adapters/peft_files.h"
#include "model/config.h"

namespace lorazip {

// llama.cpp applies y += (alpha / r) * B (A x) with one alpha for the whole file and r = each
// lora_b's ne[0]. When modules differ in scaling * r (rank_pattern / alpha_pattern, rsLoRA), the
// alpha of the first module is written and each other lora_b is multiplied by its ratio, so every
// projection gets exactly the adapter's own scaling. `base` is the config of the model the
// adapter belongs to (its head counts decide the q/k permutation). Atomic write. Torch-free
// (training's LoraAdapter gives its modules by peft_modules()).
void save_gguf_lora(const std::vector<PeftModule>& modules, const LlamaConfig& base, const std::string& path,
                    const std::string& name = "");

}  // namespace lorazip
