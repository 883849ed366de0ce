#pragma once
// Canonical, deterministic rendering of the IR (for golden files, `/config` and `gantry check`).
#include <nlohmann/json_fwd.hpp>

#include "ir/ir.h"

namespace gantry::ir {
nlohmann::json toJson(const Config& config);
} // namespace gantry::ir
