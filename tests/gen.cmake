# Deterministic generation and the lossy protocols (label: gen): tiny engine models built in the
# tests, torch-free, seconds each.
lorazip_add_test(NAME test_generate SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_generate.cpp LIBS lorazip_gen LABELS gen)
target_include_directories(test_generate PRIVATE ${PROJECT_SOURCE_DIR})
lorazip_add_test(NAME test_qa SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_qa.cpp LIBS lorazip_gen LABELS gen)
target_include_directories(test_qa PRIVATE ${PROJECT_SOURCE_DIR})
lorazip_add_test(NAME test_rewrite SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_rewrite.cpp LIBS lorazip_gen LABELS gen)
target_include_directories(test_rewrite PRIVATE ${PROJECT_SOURCE_DIR})
add_dependencies(test_rewrite lorazip_spm)
lorazip_add_test(NAME test_frontier SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_frontier.cpp LIBS lorazip_gen LABELS gen)
target_include_directories(test_frontier PRIVATE ${PROJECT_SOURCE_DIR})
