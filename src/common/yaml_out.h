#pragma once
// Renders a JSON value as block-style YAML the way kubectl prints objects: keys sorted, strings
// quoted only where YAML would misread them.
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace gantry {
std::string toYaml(const nlohmann::json& value);

// JSON text that never throws: bytes that are not UTF-8 (from a user's file) are replaced.
std::string toJsonText(const nlohmann::json& value, int indent = -1);
} // namespace gantry
