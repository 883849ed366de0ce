# GANTRY_PGO (see CMakeLists.txt). The counters are updated atomically where the target allows it:
# the workers are threads, and racing increments would lose counts.
if(GANTRY_PGO STREQUAL "GENERATE")
  add_compile_options(-fprofile-generate -fprofile-update=prefer-atomic)
  add_link_options(-fprofile-generate)
elseif(GANTRY_PGO STREQUAL "USE")
  # -fprofile-partial-training: code the training never ran (error paths, other filters) is
  # optimised as in a plain build, not for size. Translation units without counts (the training
  # does not reach every file) are not worth a warning.
  add_compile_options(-fprofile-use -fprofile-partial-training -Wno-missing-profile)
elseif(NOT GANTRY_PGO STREQUAL "OFF")
  message(FATAL_ERROR "GANTRY_PGO must be OFF, GENERATE or USE (got \"${GANTRY_PGO}\")")
endif()
