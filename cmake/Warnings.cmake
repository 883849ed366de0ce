# Project-wide warnings; CI turns them into errors (GANTRY_WERROR=ON).
add_compile_options(-Wall -Wextra -Wpedantic -Wno-unused-parameter)
if(GANTRY_WERROR)
  add_compile_options(-Werror)
endif()
