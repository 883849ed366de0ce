#pragma once
// Decoding of Kubernetes manifests (multi-document YAML, or JSON) into api:: structs.
// Decoding is strict, as the API server's strict field validation is: an unknown field in a kind
// Gantry serves is an error that names the file, line and field path.
#include <string>
#include <vector>

#include "api/types.h"

namespace gantry::api {

struct DecodeError {
  std::string file;
  int line = 0;   // 1-based; 0 when unknown
  int column = 0; // 1-based
  std::string path; // field path, e.g. spec.listeners[0].port
  std::string message;

  // "file:line:col: path: message"
  std::string str() const;
};

// Decodes every document in `content` and appends the objects to `out`. On any error nothing is
// appended and the errors are returned: a file is taken whole or not at all, so a half-edited
// file never serves half its objects.
std::vector<DecodeError> decodeManifests(const std::string& file, const std::string& content,
                                         ResourceSet& out);

} // namespace gantry::api
