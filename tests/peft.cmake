# PEFT adapters for the coding engine, torch-free (label: codec): an adapter's file is read into
# one buffer and its tensors are packed for the engine from there; the view reader accepts and
# refuses what the float reader does, with the same fingerprint.
lorazip_add_test(NAME test_peft_view SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_peft_view.cpp
                 LIBS lorazip_runtime LABELS codec)
add_dependencies(test_peft_view lorazip_spm)
