# The C example of README.md is built and run as the ctest `readme_example`, so the README cannot
# drift from the public headers. The example is the ```c block right after the marker
# `<!-- example: readme_example.c -->`; it is extracted at configure time (README.md is a
# configure dependency) and compiled with the flags of the tests, against the public headers only.
#
# Two modes: included from CMakeLists.txt it sets up the target and the test; run by that test
# with `cmake -P` (SKEPTIC, EXAMPLE, WORK_DIR defined) it trains a tiny model with the CLI and
# checks the example's output on it.

if(CMAKE_SCRIPT_MODE_FILE)
  function(sk_readme_run out_var)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "`${ARGN}` exited with ${rc}:\n${out}${err}")
    endif()
    set(${out_var} "${out}" PARENT_SCOPE)
  endfunction()

  file(REMOVE_RECURSE "${WORK_DIR}")
  file(MAKE_DIRECTORY "${WORK_DIR}")
  set(model "${WORK_DIR}/m.safetensors")
  sk_readme_run(out "${SKEPTIC}" train --data moons --arch mlp:2-16-2:relu --epochs 2 --lr 0.01 --seed 1
                --threads 1 --out "${model}" --quiet)
  sk_readme_run(out "${EXAMPLE}" "${model}" moons)
  if(NOT out MATCHES "^clean ([0-9.]+) robust ([0-9.]+)\n$")
    message(FATAL_ERROR "the example printed '${out}', not 'clean A robust B'")
  endif()
  set(clean "${CMAKE_MATCH_1}")
  set(robust "${CMAKE_MATCH_2}")
  foreach(v clean robust)
    if(NOT ${v} MATCHES "^(0\\.[0-9]+|1\\.0+)$")
      message(FATAL_ERROR "${v} accuracy ${${v}} is not in [0, 1]")
    endif()
  endforeach()
  if(robust GREATER clean)
    message(FATAL_ERROR "robust accuracy ${robust} exceeds clean accuracy ${clean}")
  endif()
  # The same attack by the command line (same test rows, box, seed): the same figures.
  sk_readme_run(json "${SKEPTIC}" attack --model "${model}" --data moons --attack pgd --eps 0.1 --steps 20
                --threads 1 --json)
  foreach(key clean robust)
    if(NOT json MATCHES "\"${key}_accuracy\":([0-9.]+)")
      message(FATAL_ERROR "skeptic attack --json gave no ${key}_accuracy: ${json}")
    endif()
    if(NOT CMAKE_MATCH_1 EQUAL ${key})
      message(FATAL_ERROR "the example's ${key} accuracy ${${key}} differs from skeptic attack's ${CMAKE_MATCH_1}")
    endif()
  endforeach()
  # A missing model file is a message and exit status 1, not a crash.
  execute_process(COMMAND "${EXAMPLE}" "${WORK_DIR}/missing.safetensors" moons
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 1 OR NOT err MATCHES "^error: .*missing\\.safetensors")
    message(FATAL_ERROR "on a missing file the example exited with ${rc} and said '${err}'")
  endif()
  message(STATUS "readme example: clean ${clean} robust ${robust}")
  file(REMOVE_RECURSE "${WORK_DIR}")
  return()
endif()

set(_sk_readme "${CMAKE_SOURCE_DIR}/README.md")
set(_sk_marker "<!-- example: readme_example.c -->")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_sk_readme}")
file(READ "${_sk_readme}" _sk_text)
string(FIND "${_sk_text}" "${_sk_marker}" _sk_at)
if(_sk_at LESS 0)
  message(FATAL_ERROR "README.md has no '${_sk_marker}' before its C example")
endif()
string(LENGTH "${_sk_marker}" _sk_len)
math(EXPR _sk_at "${_sk_at} + ${_sk_len}")
string(SUBSTRING "${_sk_text}" ${_sk_at} -1 _sk_text)
string(FIND "${_sk_text}" "```c\n" _sk_open)
if(_sk_open LESS 0)
  message(FATAL_ERROR "README.md: no ```c block after '${_sk_marker}'")
endif()
string(SUBSTRING "${_sk_text}" 0 ${_sk_open} _sk_gap)
if(NOT _sk_gap MATCHES "^[ \t\r\n]*$")
  message(FATAL_ERROR "README.md: '${_sk_marker}' must be followed directly by the ```c block")
endif()
math(EXPR _sk_open "${_sk_open} + 5")
string(SUBSTRING "${_sk_text}" ${_sk_open} -1 _sk_text)
string(FIND "${_sk_text}" "\n```" _sk_close)
if(_sk_close LESS 0)
  message(FATAL_ERROR "README.md: the C example's block is not closed")
endif()
string(SUBSTRING "${_sk_text}" 0 ${_sk_close} _sk_code)
# Written only when it changed, so a reconfigure does not rebuild the example.
file(WRITE "${CMAKE_BINARY_DIR}/readme_example.c.new" "${_sk_code}\n")
configure_file("${CMAKE_BINARY_DIR}/readme_example.c.new" "${CMAKE_BINARY_DIR}/readme_example.c" COPYONLY)

add_executable(readme_example "${CMAKE_BINARY_DIR}/readme_example.c")
target_link_libraries(readme_example PRIVATE skeptic_static)
add_test(NAME readme_example
         COMMAND ${CMAKE_COMMAND} -DSKEPTIC=$<TARGET_FILE:skeptic> -DEXAMPLE=$<TARGET_FILE:readme_example>
                 -DWORK_DIR=${CMAKE_BINARY_DIR}/readme_example.run -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(readme_example PROPERTIES TIMEOUT 300)
