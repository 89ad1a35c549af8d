# Tests under mpirun (included only when CMake found MPI: without it they do
# not exist, rather than pass). Each case compares a command on several
# ranks with the same command on one process: tests/mpi/mpi_cases.py.
find_program(SK_MPIRUN NAMES mpirun mpiexec)
if(NOT SK_MPIRUN)
  message(FATAL_ERROR "MPI was found but not mpirun: install openmpi-bin (scripts/install-deps), or configure with -DSKEPTIC_MPI=OFF")
endif()
find_program(SK_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SK_PYTHON3)
  find_program(SK_PYTHON3 NAMES python3)
endif()
foreach(case eval certify attack train sweep abort queue)
  add_test(NAME mpi_${case} COMMAND ${SK_PYTHON3} ${CMAKE_SOURCE_DIR}/tests/mpi/mpi_cases.py ${case})
  set_tests_properties(mpi_${case} PROPERTIES
    ENVIRONMENT "SKEPTIC_SOURCE_DIR=${CMAKE_SOURCE_DIR};SKEPTIC_BUILD_DIR=${CMAKE_BINARY_DIR};SKEPTIC_MPIRUN=${SK_MPIRUN}"
    TIMEOUT 300 RUN_SERIAL TRUE)
endforeach()
# The work queue and all-reduce of src/core/dist.c, driven by a small program.
add_executable(mpi_dist_probe ${CMAKE_SOURCE_DIR}/tests/mpi/mpi_dist_probe.c)
target_link_libraries(mpi_dist_probe PRIVATE skeptic_static)
