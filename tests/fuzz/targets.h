#pragma once
// Fuzz entry points, shared by the libFuzzer drivers (GANTRY_FUZZ=ON, clang) and by the corpus
// replay test that runs in every build: a crash found once stays a test.
#include <cstddef>
#include <cstdint>

namespace gantry::fuzz {
// HTTP/1 request and response heads, then the rest as a chunked body.
void http1(const uint8_t* data, size_t size);
// Bytes as a manifest file: decode, then translate whatever decoded.
void manifest(const uint8_t* data, size_t size);
} // namespace gantry::fuzz
