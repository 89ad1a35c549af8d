# Tests of what users install: the C library through pkg-config and CMake
# (tests/test_install.sh), and the Python package (python/tests, pytest).

set(SK_SANITIZER_FLAGS "")
if(SKEPTIC_SANITIZE)
  # A program linking a sanitized libskeptic is compiled with the same runtime.
  set(SK_SANITIZER_FLAGS "-fsanitize=address,undefined -fno-omit-frame-pointer")
endif()
add_test(NAME install_example
         COMMAND sh ${CMAKE_SOURCE_DIR}/tests/test_install.sh ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR} "${SK_SANITIZER_FLAGS}")
set_tests_properties(install_example PROPERTIES TIMEOUT 300)

# The Python package over this build's shared library, with Debian's python3
# (python3-numpy, python3-pytest, python3-onnx; python/tests/run_pytest.sh). Under the sanitizers python itself is not
# instrumented, so the AddressSanitizer runtime is preloaded into it and leak
# checking is off for that process (the interpreter frees little at exit); the
# library's code is still checked for memory errors and undefined behaviour.
set(SK_PY_ENV "SKEPTIC_SOURCE_DIR=${CMAKE_SOURCE_DIR}" "SKEPTIC_BUILD_DIR=${CMAKE_BINARY_DIR}"
    "SKEPTIC_LIBRARY=$<TARGET_FILE:skeptic_shared>" "PYTHONPATH=${CMAKE_SOURCE_DIR}/python" "PYTHONDONTWRITEBYTECODE=1")
if(SKEPTIC_SANITIZE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so OUTPUT_VARIABLE SK_LIBASAN
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND SK_PY_ENV "LD_PRELOAD=${SK_LIBASAN}" "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0")
endif()
add_test(NAME python_package COMMAND sh ${CMAKE_SOURCE_DIR}/python/tests/run_pytest.sh
         WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
set_tests_properties(python_package PROPERTIES ENVIRONMENT "${SK_PY_ENV}" TIMEOUT 600 SKIP_RETURN_CODE 77)
