# Every document of ../shared/data/llm-text round-trips alone through the LM codec (tiny random
# Llama, tokenizer trained in the test), compressed and decompressed on different thread counts.
# Skipped when ../shared is absent. About 10 minutes on two busy cores, so outside the default run.
# One label only: lorazip_add_test passes LABELS through unescaped, so "codec;slow" would break.
if(LORAZIP_WITH_TORCH)
  lorazip_add_test(NAME test_lm_codec_corpus SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_lm_codec_corpus.cpp
                   LIBS lorazip_torch_base LABELS slow TIMEOUT 3600)
  add_dependencies(test_lm_codec_corpus lorazip_spm)
endif()

# Conditioned coding on the real SmolLM2 GGUF and the llm-text test split (label slow; about a
# minute): fewer bits given the prompt than from BOS alone, in every domain.
if(LORAZIP_WITH_TORCH)  # it reads the corpus through the data library (built with libtorch)
  lorazip_add_test(NAME test_conditioned_slow SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_conditioned_slow.cpp
                   LIBS lorazip_runtime lorazip_gen lorazip_data LABELS slow TIMEOUT 1800)
endif()
