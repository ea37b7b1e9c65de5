# Data: corpus reading, the strict `data:` config, prepare -> HDF5 token store -> read back,
# split stability, duplicates; the shared LLM-text corpus and h5py readability (skipped when absent).
lorazip_add_test(NAME test_data SOURCES test_data.cpp LIBS lorazip_data LABELS data TIMEOUT 300)
add_dependencies(test_data lorazip_spm)
lorazip_add_test(NAME test_data_corpora SOURCES test_data_corpora.cpp LIBS lorazip_data LABELS data TIMEOUT 300)
add_dependencies(test_data_corpora lorazip_spm)
