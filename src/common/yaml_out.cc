#include "common/yaml_out.h"

#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace gantry {
namespace {

bool needsQuotes(const std::string& s) {
  if (s.empty()) {
    return true;
  }
  static const char* kReserved[] = {"true", "false", "yes", "no", "on", "off", "null", "~",
                                    "True", "False", "Yes", "No", "On", "Off", "Null", "NULL",
                                    "TRUE", "FALSE", "y", "n", "Y", "N"};
  for (const char* r : kReserved) {
    if (s == r) {
      return true;
    }
  }
  if (parseUint(s) || (s[0] == '-' && parseUint(s.substr(1)))) {
    return true;
  }
  // Something a YAML reader would take for a number (float, hex, octal) is quoted too.
  {
    char* end = nullptr;
    errno = 0;
    std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size()) {
      return true;
    }
  }
  if (s == ".inf" || s == "-.inf" || s == ".nan" || s == ".NaN" || s == ".Inf") {
    return true;
  }
  // A YAML 1.1 timestamp (2023-06-19T21:04:55Z) is quoted, as kubectl prints it.
  if (s.size() >= 10 && std::isdigit(static_cast<unsigned char>(s[0])) && s[4] == '-' && s[7] == '-') {
    return true;
  }
  const std::string special = ":#{}[],&*!|>'\"%@`";
  if (special.find(s[0]) != std::string::npos || s[0] == '-' || s[0] == '?' || s[0] == ' ' ||
      s.back() == ' ') {
    return true;
  }
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos ||
      s.find('\n') != std::string::npos || s.find('\t') != std::string::npos) {
    return true;
  }
  return false;
}

std::string scalar(const nlohmann::json& v) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (!needsQuotes(s)) {
      return s;
    }
    return toJsonText(nlohmann::json(s)); // JSON string syntax is valid double-quoted YAML
  }
  if (v.is_null()) {
    return "null";
  }
  return toJsonText(v);
}

bool isEmptyCollection(const nlohmann::json& v) {
  return (v.is_object() || v.is_array()) && v.empty();
}

void emit(const nlohmann::json& v, int indent, std::string& out);

void emitValueAfterKey(const nlohmann::json& v, int indent, std::string& out) {
  if (isEmptyCollection(v)) {
    out += v.is_object() ? " {}\n" : " []\n";
  } else if (v.is_object()) {
    out += "\n";
    emit(v, indent + 2, out);
  } else if (v.is_array()) {
    out += "\n";
    emit(v, indent, out); // kubectl style: list items at the key's indentation
  } else {
    out += " " + scalar(v) + "\n";
  }
}

void emit(const nlohmann::json& v, int indent, std::string& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      out += pad + scalar(nlohmann::json(it.key())) + ":";
      emitValueAfterKey(it.value(), indent, out);
    }
  } else if (v.is_array()) {
    for (const auto& item : v) {
      if (item.is_object() && !item.empty()) {
        // First key on the dash line, the rest indented under it.
        std::string inner;
        emit(item, indent + 2, inner);
        out += pad + "- " + inner.substr(static_cast<size_t>(indent) + 2);
      } else if (item.is_array() && !item.empty()) {
        std::string inner;
        emit(item, indent + 2, inner);
        out += pad + "-\n" + inner;
      } else if (isEmptyCollection(item)) {
        out += pad + (item.is_object() ? "- {}\n" : "- []\n");
      } else {
        out += pad + "- " + scalar(item) + "\n";
      }
    }
  } else {
    out += pad + scalar(v) + "\n";
  }
}

} // namespace

std::string toJsonText(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string toYaml(const nlohmann::json& value) {
  std::string out;
  if (isEmptyCollection(value)) {
    return value.is_object() ? "{}\n" : "[]\n";
  }
  emit(value, 0, out);
  return out;
}

} // namespace gantry
