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
