# The coding engine (label: engine). engine_hash is built from the engine's sources at three
# -march levels; every build and every kernel path must give the one committed hash. The aarch64
# cross build runs under qemu; the lint disassembles the engine's objects. test_engine compares
# the engine with libtorch's forward.
set(LORAZIP_ENGINE_HASH_TARGETS)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(LORAZIP_ENGINE_MARCHES x86-64 x86-64-v3 x86-64-v4)
else()
  set(LORAZIP_ENGINE_MARCHES native)
endif()
foreach(march ${LORAZIP_ENGINE_MARCHES})
  string(REPLACE "-" "_" suffix ${march})
  set(t engine_hash_${suffix})
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/engine_hash.cpp ${CMAKE_CURRENT_LIST_DIR}/kernels_w16_generic.cpp
                    ${LORAZIP_ENGINE_SOURCES})
  target_include_directories(${t} PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(${t} PRIVATE -march=${march} ${LORAZIP_ENGINE_FLAGS})
  target_link_libraries(${t} PRIVATE Threads::Threads)
  # A build for a level this CPU lacks cannot even start: skip it (77) instead of failing.
  set(need "")
  if(march STREQUAL "x86-64-v3")
    set(need "avx2")
  elseif(march STREQUAL "x86-64-v4")
    set(need "avx512f")
  endif()
  if(need)
    add_test(NAME ${t} COMMAND sh -c "grep -qw ${need} /proc/cpuinfo || { echo 'SKIP: this CPU has no ${need}'; exit 77; }; exec \"$0\"" $<TARGET_FILE:${t}>)
  else()
    add_test(NAME ${t} COMMAND ${t})
  endif()
  set_tests_properties(${t} PROPERTIES LABELS engine SKIP_RETURN_CODE 77 TIMEOUT 600)
endforeach()

add_test(NAME engine_cross_aarch64
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/engine_cross.sh ${PROJECT_SOURCE_DIR} ${CMAKE_BINARY_DIR}/engine_cross
                 $<$<TARGET_EXISTS:engine_hash_x86_64>:$<TARGET_FILE:engine_hash_x86_64>>)
set_tests_properties(engine_cross_aarch64 PROPERTIES LABELS engine SKIP_RETURN_CODE 77 TIMEOUT 600)

add_test(NAME engine_lint COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/engine_lint.sh ${CMAKE_OBJDUMP} ${CMAKE_NM}
                                  $<TARGET_OBJECTS:lorazip_engine>)
set_tests_properties(engine_lint PROPERTIES LABELS engine TIMEOUT 300)
# 16-lane vectors compiled without AVX-512: GCC notes that their calling convention differs,
# which does not matter for functions with internal linkage.
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/kernels_w16_generic.cpp PROPERTIES COMPILE_OPTIONS -Wno-psabi)

if(LORAZIP_WITH_TORCH)
  lorazip_add_test(NAME test_engine SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_engine.cpp
                   LIBS lorazip_torch_base LABELS engine)
endif()

# Golden files (tests/golden/engine-v1): torch-free, on the LM codec and the engine.
lorazip_add_test(NAME test_golden SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_golden.cpp
                 LIBS lorazip_lm_codec LABELS engine)
# The models' weights come from float steps in the test itself: the same roundings everywhere.
target_compile_options(test_golden PRIVATE ${LORAZIP_ENGINE_FLAGS})
add_dependencies(test_golden lorazip_spm)

# The engine's worker pool: every part of every call runs once (torch-free).
lorazip_add_test(NAME test_pool SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pool.cpp LIBS lorazip_engine LABELS engine
                 TIMEOUT 300)
