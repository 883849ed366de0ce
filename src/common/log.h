#pragma once
// Logging: spdlog with one process-wide logger writing to stderr. Workers log only on errors
// and slow paths, so the shared sink's lock is never on the hot path.
#include <spdlog/spdlog.h>

namespace gantry::log {
// Configures the default logger; `level` is one of trace, debug, info, warn, error.
void init(const std::string& level);
} // namespace gantry::log
