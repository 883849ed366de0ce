# Project-wide warnings; CI turns them into errors (GANTRY_WERROR=ON).
add_compile_options(-Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # GCC 12 reports false -Wrestrict positives inside libstdc++ for `"literal" + std::string`
  # at -O2 and above (GCC bug 105329); the warning stays on with other compilers.
  add_compile_options(-Wno-restrict)
endif()
if(GANTRY_WERROR)
  add_compile_options(-Werror)
endif()
