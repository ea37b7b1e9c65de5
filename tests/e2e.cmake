# End-to-end tests (label: e2e): they drive the real `lorazip` program as a user would, on the
# toy pipeline tests/e2e/tiny.yaml (5-10 s, built once and shared by every test case through
# <build>/tests/e2e-work/tiny). About 130 program runs of ~0.5 s CPU each (mostly loading
# libtorch): the label takes 1-3 minutes with ctest -j2 on 2 cores, depending on their load.
# test_e2e_slow (label: slow) runs the embedded default job, configs/default.yaml, from scratch.
# They train the toy pipeline first, so they need the full build.
if(LORAZIP_WITH_TORCH AND TARGET lorazip)
  set(LORAZIP_E2E_WORK "${CMAKE_CURRENT_BINARY_DIR}/e2e-work")

  lorazip_add_test(NAME test_e2e
                   SOURCES test_e2e_cli.cpp test_e2e_help.cpp test_e2e_pipeline.cpp test_e2e_codec.cpp test_e2e_export.cpp
                   LIBS nlohmann_json::nlohmann_json
                   LABELS e2e)
  add_dependencies(test_e2e lorazip)
  target_compile_definitions(test_e2e PRIVATE LORAZIP_BIN="$<TARGET_FILE:lorazip>" LORAZIP_E2E_WORK="${LORAZIP_E2E_WORK}")
  target_include_directories(test_e2e PRIVATE ${PROJECT_SOURCE_DIR})  # cli/subcommands.h: the subcommand table the help test reads

  lorazip_add_test(NAME test_e2e_slow
                   SOURCES test_e2e_slow.cpp
                   LIBS nlohmann_json::nlohmann_json
                   LABELS slow  # one label: lorazip_add_test passes LABELS through unescaped, so a list would break
                   TIMEOUT 1800)
  add_dependencies(test_e2e_slow lorazip)
  target_compile_definitions(test_e2e_slow PRIVATE LORAZIP_BIN="$<TARGET_FILE:lorazip>" LORAZIP_E2E_WORK="${LORAZIP_E2E_WORK}")
endif()
