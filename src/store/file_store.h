#pragma once
// File mode's source: every *.yaml, *.yml and *.json below a folder, multi-document files
// included. It plays the API server's part where the Gateway API relies on it: metadata.generation
// (1 at first sight, +1 whenever the object's spec changes), creationTimestamp on first sight, and
// implicit Namespaces. A file that fails to decode keeps serving its last good objects.
// Main thread only.
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "api/decode.h"
#include "api/types.h"

namespace gantry::store {

struct LoadResult {
  api::ResourceSet resources;
  std::vector<api::DecodeError> errors; // files that failed this time (their last good objects stay)
  std::vector<std::string> files;       // files read
};

class FileStore {
public:
  explicit FileStore(std::string dir) : dir_(std::move(dir)) {}

  // Reads the folder. `now` (Unix seconds) stamps creationTimestamp on objects seen first.
  LoadResult load(int64_t now);

  // A cheap summary of the folder (paths, sizes, modification times): when it is unchanged since
  // the last load, a reload would read the same thing.
  std::string fingerprint() const;
  bool changedSinceLoad() const { return fingerprint() != loadedFingerprint_; }

  const std::string& dir() const { return dir_; }

private:
  struct Tracked {
    std::string specJson;
    int64_t generation = 1;
    std::string creationTimestamp;
  };
  std::string dir_;
  std::string loadedFingerprint_;
  std::map<std::string, std::string> lastGoodContent_; // file -> content that decoded
  std::map<std::tuple<std::string, std::string, std::string, std::string>, Tracked> tracked_;
};

} // namespace gantry::store
