# Interop of the coding engine with llama.cpp (labels interop and slow, so neither CI's default run
# nor scripts/test.sh runs it): scripts/interop_llamacpp.sh compares engine_logprobs' next-token
# log-probabilities, base and with a LoRA exported as GGUF, with llama-cpp-python's on SmolLM2.
# It exits 77 (skipped) when its Python ($LORAZIP_PYTHON, else python3) lacks gguf/llama_cpp or
# the model or ../shared/data cannot be had.
if(LORAZIP_WITH_TORCH)
  add_executable(engine_logprobs tools/engine_logprobs.cpp)
  target_link_libraries(engine_logprobs PRIVATE lorazip_torch_base)
  target_compile_options(engine_logprobs PRIVATE ${LORAZIP_WARNINGS})
  add_test(NAME interop_llamacpp COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/interop_llamacpp.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(interop_llamacpp PROPERTIES LABELS "interop;slow" SKIP_RETURN_CODE 77 TIMEOUT 3600)
endif()

# lorazip's quantized GGUF tensors against the gguf Python package (label interop; a few seconds):
# scripts/check_gguf_quant.sh writes a tensor of every engine kind with gguf_quant_dump and checks
# that gguf.quants.dequantize gives lorazip's floats bit for bit. Skips (77) without a venv with
# gguf and numpy ($VENV, default ${LORAZIP_CACHE}/venv-gguf).
add_executable(gguf_quant_dump tools/gguf_quant_dump.cpp)
target_link_libraries(gguf_quant_dump PRIVATE lorazip_model_io)
target_compile_options(gguf_quant_dump PRIVATE ${LORAZIP_WARNINGS})
add_test(NAME gguf_interop_quant COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_gguf_quant.sh $<TARGET_FILE:gguf_quant_dump>)
set_tests_properties(gguf_interop_quant PROPERTIES LABELS "interop" SKIP_RETURN_CODE 77 TIMEOUT 300)

# Interop with Hugging Face transformers + PEFT (labels interop and slow; about a minute and a half):
# scripts/interop_hf.sh loads lorazip's base directory, PEFT export and merged export in an old and a
# current stack and compares tokens and bits. Skips (77) when neither stack's venv exists
# (bash scripts/interop_hf.sh --make creates them).
if(LORAZIP_WITH_TORCH)
  add_test(NAME interop_hf COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/interop_hf.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(interop_hf PROPERTIES LABELS "interop;slow" SKIP_RETURN_CODE 77 TIMEOUT 1800)
endif()

# The context of conditioned coding against SmolLM2's own chat template (labels interop and slow):
# scripts/interop_chat_template.sh renders each prompt with llama-cpp-python's Jinja formatter and
# compares llama.cpp's tokens with `bpe_dump_ids --context auto`. Skips (77) without the venv.
add_test(NAME interop_chat_template COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/interop_chat_template.sh ${CMAKE_BINARY_DIR})
set_tests_properties(interop_chat_template PROPERTIES LABELS "interop;slow" SKIP_RETURN_CODE 77 TIMEOUT 600)
