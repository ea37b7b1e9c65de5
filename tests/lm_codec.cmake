# The LM codec end to end (label: codec): a tiny random Llama with a tokenizer trained in the test,
# plus the real TinyStories model from ../shared when present. About a minute on one thread.
if(LORAZIP_WITH_TORCH)
  lorazip_add_test(NAME test_lm_codec SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_lm_codec.cpp
                   LIBS lorazip_torch_base LABELS codec)
  add_dependencies(test_lm_codec lorazip_spm)
endif()
