# Data: corpus reading, the strict `data:` config, prepare -> HDF5 token store -> read back,
# split stability, duplicates; the shared LLM-text corpus and h5py readability (skipped when absent).
if(NOT LORAZIP_WITH_TORCH)  # the data library (HDF5 token store) is built with libtorch only
  return()
endif()
lorazip_add_test(NAME test_data SOURCES test_data.cpp LIBS lorazip_data LABELS data TIMEOUT 300)
add_dependencies(test_data lorazip_spm)
lorazip_add_test(NAME test_data_corpora SOURCES test_data_corpora.cpp LIBS lorazip_data LABELS data TIMEOUT 300)
# The h5py check needs a Python that imports h5py: the first of FindPython3's interpreter and each
# python3 on PATH that does (Debian's python3-h5py lives in the system Python, which a pyenv or
# venv on PATH may hide). Without one the test skips and says so.
find_package(Python3 COMPONENTS Interpreter QUIET)
set(lorazip_pythons ${Python3_EXECUTABLE})
string(REPLACE ":" ";" lorazip_path_dirs "$ENV{PATH}")
foreach(dir ${lorazip_path_dirs})
  if(EXISTS "${dir}/python3")
    list(APPEND lorazip_pythons "${dir}/python3")
  endif()
endforeach()
foreach(py ${lorazip_pythons})
  execute_process(COMMAND "${py}" -c "import h5py" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    target_compile_definitions(test_data_corpora PRIVATE LORAZIP_PYTHON="${py}")
    break()
  endif()
endforeach()
