# GANTRY_SANITIZE=ON builds everything with ASan + UBSan; the test script runs the unit and
# translator (golden) tests in such a build.
if(GANTRY_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# GANTRY_FUZZ=ON (clang): coverage instrumentation for everything the fuzz drivers reach.
if(GANTRY_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
