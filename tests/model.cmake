# Model: config parsing, safetensors, the Llama forward / incremental paths, checkpoints, and the
# real TinyStories model against its float64 reference, and transformers-written fixtures.
lorazip_add_test(NAME test_model_config SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_model_config.cpp
                 LIBS lorazip_model_io LABELS model)
lorazip_add_test(NAME test_safetensors SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_safetensors.cpp
                 LIBS lorazip_model_io LABELS model)
lorazip_add_test(NAME test_gguf SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gguf.cpp
                 LIBS lorazip_model_io LABELS model)
lorazip_add_test(NAME test_gguf_quant SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gguf_quant.cpp
                 LIBS lorazip_model_io LABELS model)
if(LORAZIP_WITH_TORCH)
  lorazip_add_test(NAME test_model_llama SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_model_llama.cpp
                   LIBS lorazip_model LABELS model)
  lorazip_add_test(NAME test_checkpoint SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_checkpoint.cpp
                   LIBS lorazip_model LABELS model)
  lorazip_add_test(NAME test_model_hf_fixtures SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_model_hf_fixtures.cpp
                   LIBS lorazip_model LABELS model)
  lorazip_add_test(NAME test_gguf_model SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_gguf_model.cpp
                   LIBS lorazip_adapters LABELS model)
  lorazip_add_test(NAME test_tinystories SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_tinystories.cpp
                   LIBS lorazip_model lorazip_runtime LABELS model)
endif()

# GGUF dequantization against the gguf Python package on the real SmolLM2 file (labels interop and
# slow, so the default run leaves it out;
# skips when the venv or the file is absent).
add_executable(gguf_dequant_dump ${CMAKE_CURRENT_LIST_DIR}/gguf_dequant_dump.cpp)
target_link_libraries(gguf_dequant_dump PRIVATE lorazip_model_io)
add_test(NAME gguf_interop_dequant
         COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check_gguf_interop.sh $<TARGET_FILE:gguf_dequant_dump>)
set_tests_properties(gguf_interop_dequant PROPERTIES LABELS "interop;slow" SKIP_RETURN_CODE 77 TIMEOUT 600)
