# The paper's lossless protocol (issue 14): its size metric in the report, clustering into domains,
# and routing by prompt.
lorazip_add_test(NAME test_paper_metric
                 SOURCES test_paper_metric.cpp
                 LIBS lorazip_report
                 LABELS codec)

lorazip_add_test(NAME test_kmeans
                 SOURCES test_kmeans.cpp
                 LIBS lorazip_kmeans
                 LABELS data)

if(LORAZIP_WITH_TORCH AND TARGET lorazip)  # lorazip cluster: the full build
  lorazip_add_test(NAME test_e2e_cluster
                   SOURCES test_e2e_cluster.cpp
                   LIBS nlohmann_json::nlohmann_json
                   LABELS e2e)
  add_dependencies(test_e2e_cluster lorazip)
  target_compile_definitions(test_e2e_cluster PRIVATE LORAZIP_BIN="$<TARGET_FILE:lorazip>"
                             LORAZIP_E2E_WORK="${CMAKE_CURRENT_BINARY_DIR}/e2e-work")
endif()
