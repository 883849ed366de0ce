// libFuzzer driver: clang++ -fsanitize=fuzzer (cmake -DGANTRY_FUZZ=ON).
#include "fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gantry::fuzz::manifest(data, size);
  return 0;
}
