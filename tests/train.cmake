# LoRA adapters and the trainer (label: train). Tiny models, a few steps each: seconds.
lorazip_add_test(NAME test_lora SOURCES test_lora.cpp LIBS lorazip_adapters LABELS train)
lorazip_add_test(NAME test_train SOURCES test_train.cpp LIBS lorazip_train LABELS train)
