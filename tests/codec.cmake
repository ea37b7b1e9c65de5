# Tests of the torch-free codec core (label: codec).
lorazip_add_test(NAME test_range_coder SOURCES test_range_coder.cpp LIBS lorazip_codec_core LABELS codec)
lorazip_add_test(NAME test_quantize SOURCES test_quantize.cpp LIBS lorazip_codec_core LABELS codec)
lorazip_add_test(NAME test_container SOURCES test_container.cpp LIBS lorazip_codec_core LABELS codec)
lorazip_add_test(NAME test_compact SOURCES test_compact.cpp LIBS lorazip_codec_core LABELS codec)
lorazip_add_test(NAME test_archive_format SOURCES test_archive_format.cpp LIBS lorazip_codec_core LABELS codec)
lorazip_add_test(NAME test_archive_recovery SOURCES test_archive_recovery.cpp LIBS lorazip_codec_core LABELS codec)
lorazip_add_test(NAME test_classical SOURCES test_classical.cpp LIBS lorazip_codec_core LABELS codec)
lorazip_add_test(NAME test_verify SOURCES test_verify.cpp LIBS lorazip_codec_core LABELS codec)
