# The coding-only build (label build; in the default run): scripts/coding_only_check.sh configures
# and builds -DLORAZIP_WITH_TORCH=OFF in <build>/coding-only (about a minute and a half on 2 cores),
# checks that its lorazip links no libtorch, and that it and the full program read each other's
# files and write the same bytes. Skips (77) without ../shared's TinyStories model.
if(LORAZIP_WITH_TORCH AND TARGET lorazip)
  add_test(NAME coding_only_build COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/coding_only_check.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(coding_only_build PROPERTIES LABELS "build" SKIP_RETURN_CODE 77 TIMEOUT 1200)
endif()
