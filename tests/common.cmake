# Tests of the torch-free utilities in common/ that coding relies on (label: codec).
lorazip_add_test(NAME test_progress SOURCES test_progress.cpp LIBS lorazip_common LABELS codec TIMEOUT 60)
