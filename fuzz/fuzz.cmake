# Fuzz targets: fuzz/fuzz_TARGET.c defines LLVMFuzzerTestOneInput for one
# reader. Always built as fuzz_TARGET_replay (with fuzz/replay.c) and run by
# ctest over fuzz/corpus/TARGET and fuzz/crashes/TARGET, so that a reader
# that breaks on a seed or a once-crashing input fails the suite (under
# ASan + UBSan in the sanitized build). With -DSKEPTIC_FUZZ=ON (clang,
# together with -DSKEPTIC_SANITIZE=ON) also as the libFuzzer binary
# fuzz_TARGET, the library instrumented for coverage; scripts/fuzz runs one.
option(SKEPTIC_FUZZ "Build the libFuzzer targets (needs clang and SKEPTIC_SANITIZE)" OFF)
if(SKEPTIC_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang" OR NOT SKEPTIC_SANITIZE)
    message(FATAL_ERROR "SKEPTIC_FUZZ needs clang (CC=clang) and -DSKEPTIC_SANITIZE=ON")
  endif()
  target_compile_options(skeptic_obj PRIVATE -fsanitize=fuzzer-no-link)
endif()
file(GLOB SK_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
foreach(src ${SK_FUZZ_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" target ${name})
  add_executable(${name}_replay ${src} ${CMAKE_SOURCE_DIR}/fuzz/replay.c)
  set(fuzz_bins ${name}_replay)
  if(SKEPTIC_FUZZ)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    list(APPEND fuzz_bins ${name})
  endif()
  foreach(bin ${fuzz_bins})
    target_include_directories(${bin} PRIVATE ${CMAKE_SOURCE_DIR}/fuzz ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${bin} PRIVATE skeptic_static)
    set_target_properties(${bin} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  endforeach()
  add_test(NAME ${name}_replay COMMAND ${name}_replay ${CMAKE_SOURCE_DIR}/fuzz/corpus/${target}
           ${CMAKE_SOURCE_DIR}/fuzz/crashes/${target})
  set_tests_properties(${name}_replay PROPERTIES TIMEOUT 300)
endforeach()
