# Tokenizer: lossless round trips (trained and Llama-family models), training, loading errors.
# When libtorch is part of the build the test links it and runs a torch op, because SentencePiece
# and libtorch sharing one process is the integration risk the dlopen'ed shim exists for.
if(LORAZIP_WITH_TORCH)
  lorazip_add_test(NAME test_tokenizer SOURCES test_tokenizer.cpp
                   LIBS lorazip_model_io "${TORCH_LIBRARIES}" LABELS model)
  target_compile_definitions(test_tokenizer PRIVATE LORAZIP_TEST_WITH_TORCH=1)
else()
  lorazip_add_test(NAME test_tokenizer SOURCES test_tokenizer.cpp LIBS lorazip_model_io LABELS model)
endif()
add_dependencies(test_tokenizer lorazip_spm)

# Byte-level BPE (torch-free): merges, pre-tokenizers, lossless round trips, tokenizer.json, and
# SmolLM2's vocabulary when scripts/export_gguf_vocab.py has been run (skips otherwise).
lorazip_add_test(NAME test_bpe_tokenizer SOURCES test_bpe_tokenizer.cpp LIBS lorazip_model_io LABELS model)

# Interop with llama.cpp (label interop, also slow so the default run skips it): scripts/interop.sh
# compares bpe_dump_ids' ids with llama-cpp-python's on ../shared/data/llm-text and edge cases.
# It exits 77 (skipped) when its Python ($LORAZIP_PYTHON, else python3) lacks gguf/llama_cpp.
add_executable(bpe_dump_ids tools/bpe_dump_ids.cpp)
target_link_libraries(bpe_dump_ids PRIVATE lorazip_model_io lorazip_gen)
target_compile_options(bpe_dump_ids PRIVATE ${LORAZIP_WARNINGS})
add_test(NAME interop_bpe_llamacpp COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/interop.sh ${CMAKE_BINARY_DIR})
set_tests_properties(interop_bpe_llamacpp PROPERTIES LABELS "interop;slow" SKIP_RETURN_CODE 77 TIMEOUT 1800)
