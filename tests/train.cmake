# LoRA adapters and the trainer (label: train). Tiny models, a few steps each: seconds.
lorazip_add_test(NAME test_lora SOURCES test_lora.cpp LIBS lorazip_adapters LABELS train)
lorazip_add_test(NAME test_train SOURCES test_train.cpp LIBS lorazip_train LABELS train)
# Data parallelism (label ddp, also train): each test starts tests/tools/ddp_worker processes
# (tiny model, a few steps: seconds); the torchrun case skips when torchrun is absent.
add_executable(ddp_worker tools/ddp_worker.cpp)
target_link_libraries(ddp_worker PRIVATE lorazip_train)
lorazip_add_test(NAME test_ddp SOURCES test_ddp.cpp LIBS lorazip_train LABELS train ddp)
target_compile_definitions(test_ddp PRIVATE LORAZIP_DDP_WORKER="$<TARGET_FILE:ddp_worker>")
add_dependencies(test_ddp ddp_worker)
