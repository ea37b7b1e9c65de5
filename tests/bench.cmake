# The peer benchmark's runner (bench/peer.h), torch-free.
# test_bench_peer (label bench, a second): stand-in scripts under /bin/sh, no Python or model.
lorazip_add_test(NAME test_bench_peer SOURCES test_bench_peer.cpp LIBS lorazip_bench_peer LABELS bench)

# peer_llamacpp (labels bench, interop and slow: 15 s on two idle cores, minutes when other work
# shares them, as its two-thread run then stalls): the real script on SmolLM2 with the venv of
# scripts/peer_venv.sh ($LORAZIP_PEER_VENV or the cache's), llama-zip too when LORAZIP_LLAMA_ZIP
# names its folder. Exit 77 (skipped) without the venv or the model. Run: ctest -L bench.
add_executable(peer_llamacpp_check tools/peer_llamacpp_check.cpp)
target_link_libraries(peer_llamacpp_check PRIVATE lorazip_bench_peer)
target_compile_options(peer_llamacpp_check PRIVATE ${LORAZIP_WARNINGS})
target_compile_definitions(peer_llamacpp_check PRIVATE LORAZIP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_test(NAME peer_llamacpp COMMAND peer_llamacpp_check)
set_tests_properties(peer_llamacpp PROPERTIES LABELS "bench;interop;slow" SKIP_RETURN_CODE 77 TIMEOUT 900)
