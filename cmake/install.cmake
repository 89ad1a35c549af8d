# Installation of libskeptic: the `skeptic` program, the static and shared
# libraries, the public headers, a pkg-config file (skeptic.pc) and a CMake
# package (skepticConfig.cmake, target skeptic::skeptic). Included at the end of
# the top-level CMakeLists.txt; docs/library.md says how to use what it installs.
# The tests of what it installs (and of the Python package) are registered at
# the end, from package_tests.cmake.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/skeptic)
install(TARGETS skeptic RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS skeptic_shared EXPORT skepticTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS skeptic_static EXPORT skepticStaticTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/skeptic DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
set_target_properties(skeptic_shared PROPERTIES EXPORT_NAME skeptic)
set_target_properties(skeptic_static PROPERTIES EXPORT_NAME skeptic_static)
install(EXPORT skepticTargets NAMESPACE skeptic:: DESTINATION ${SK_CMAKE_DIR})
install(EXPORT skepticStaticTargets NAMESPACE skeptic:: DESTINATION ${SK_CMAKE_DIR})

if(TARGET PkgConfig::PROTOBUF_C)
  set(SK_HAS_PROTOBUF_C TRUE)
else()
  set(SK_HAS_PROTOBUF_C FALSE)
endif()
if(MPI_C_FOUND)
  set(SK_HAS_MPI TRUE)
else()
  set(SK_HAS_MPI FALSE)
endif()
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/skepticConfig.cmake.in
  ${CMAKE_BINARY_DIR}/skepticConfig.cmake INSTALL_DESTINATION ${SK_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/skepticConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/skepticConfig.cmake ${CMAKE_BINARY_DIR}/skepticConfigVersion.cmake
        DESTINATION ${SK_CMAKE_DIR})

# skeptic.pc. The shared library carries its dependencies, so a plain
# `pkg-config --libs skeptic` is -lskeptic; `--static` adds what libskeptic.a
# needs: the .pc modules of the libraries it links, plus OpenMP's flag and libm,
# which have none. OpenBLAS's module also provides LAPACK (dsyev).
set(SK_PC_REQUIRES_PRIVATE "openblas libcjson zlib libpng cairo")
if(SK_HAS_PROTOBUF_C)
  string(APPEND SK_PC_REQUIRES_PRIVATE " libprotobuf-c")
endif()
if(SK_HAS_MPI)
  string(APPEND SK_PC_REQUIRES_PRIVATE " ompi-c")  # Open MPI's C module
endif()
set(SK_PC_LIBS_PRIVATE "${OpenMP_C_FLAGS} -lm")
# Written at install time, so that the prefix is the one installed into
# (`cmake --install build --prefix DIR` as well as CMAKE_INSTALL_PREFIX).
install(CODE "
  set(SK_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(SK_PC_LIBDIR \"\\\${prefix}/${CMAKE_INSTALL_LIBDIR}\")
  set(SK_PC_INCLUDEDIR \"\\\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  set(SK_PC_REQUIRES_PRIVATE \"${SK_PC_REQUIRES_PRIVATE}\")
  set(SK_PC_LIBS_PRIVATE \"${SK_PC_LIBS_PRIVATE}\")
  set(_sk_pc \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig/skeptic.pc\")
  message(STATUS \"Installing: \${_sk_pc}\")
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/skeptic.pc.in\" \"\${_sk_pc}\" @ONLY)
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_sk_pc}\")
")
include(${CMAKE_CURRENT_LIST_DIR}/package_tests.cmake)
