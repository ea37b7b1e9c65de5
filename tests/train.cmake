# LoRA adapters and the trainer (label: train). Tiny models, a few steps each: seconds.
if(NOT LORAZIP_WITH_TORCH)  # training: libtorch
  return()
endif()
lorazip_add_test(NAME test_lora SOURCES test_lora.cpp LIBS lorazip_adapters LABELS train)
lorazip_add_test(NAME test_train SOURCES test_train.cpp LIBS lorazip_train LABELS train)
# Data parallelism (label ddp; lorazip_add_test takes one label): each test starts tests/tools/ddp_worker processes
# (tiny model, a few steps: seconds); the torchrun case skips when torchrun is absent.
add_executable(ddp_worker tools/ddp_worker.cpp)
target_link_libraries(ddp_worker PRIVATE lorazip_train)
lorazip_add_test(NAME test_ddp SOURCES test_ddp.cpp LIBS lorazip_train LABELS ddp)
target_compile_definitions(test_ddp PRIVATE LORAZIP_DDP_WORKER="$<TARGET_FILE:ddp_worker>")
add_dependencies(test_ddp ddp_worker)
# Two "hosts": network namespaces joined by a veth pair, torchrun --nnodes 2 (needs CAP_NET_ADMIN
# and torchrun, else skipped; label slow because it changes the machine's network namespaces).
add_test(NAME ddp_netns COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/ddp_netns.sh ${CMAKE_BINARY_DIR})
set_tests_properties(ddp_netns PROPERTIES LABELS "ddp;slow" SKIP_RETURN_CODE 77 TIMEOUT 300)
