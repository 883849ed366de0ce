#include "store/file_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "api/visit.h"
#include "common/strings.h"
#include "common/yaml_out.h"

namespace gantry::store {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> manifestFiles(const std::string& dir, std::vector<api::DecodeError>& errors) {
  std::vector<std::string> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    errors.push_back({dir, 0, 0, "", "cannot read folder: " + ec.message()});
    return out;
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) {
      break;
    }
    const auto& p = it->path();
    auto name = p.filename().string();
    if (!name.empty() && name[0] == '.') { // editor swap files, hidden folders
      if (it->is_directory()) {
        it.disable_recursion_pending();
      }
      continue;
    }
    if (!it->is_regular_file()) {
      continue;
    }
    auto ext = p.extension().string();
    if (ext == ".yaml" || ext == ".yml" || ext == ".json") {
      out.push_back(p.string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The part of an object whose change bumps metadata.generation: everything but metadata.
std::string specOf(const std::string& rawJson) {
  auto j = nlohmann::json::parse(rawJson, nullptr, false);
  if (j.is_discarded()) {
    return rawJson;
  }
  j.erase("metadata");
  return toJsonText(j);
}

} // namespace

std::string FileStore::fingerprint() const {
  std::vector<api::DecodeError> ignored;
  std::string out;
  for (const auto& file : manifestFiles(dir_, ignored)) {
    std::error_code ec;
    auto size = fs::file_size(file, ec);
    auto mtime = fs::last_write_time(file, ec).time_since_epoch().count();
    out += file + "|" + std::to_string(size) + "|" + std::to_string(mtime) + "\n";
  }
  return out;
}

LoadResult FileStore::load(int64_t now) {
  loadedFingerprint_ = fingerprint();
  LoadResult result;
  auto files = manifestFiles(dir_, result.errors);
  std::map<std::string, std::string> good;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string content = ss.str();
    api::ResourceSet probe;
    auto errs = api::decodeManifests(file, content, probe);
    if (errs.empty()) {
      good[file] = std::move(content);
    } else {
      result.errors.insert(result.errors.end(), errs.begin(), errs.end());
      if (auto it = lastGoodContent_.find(file); it != lastGoodContent_.end()) {
        good[file] = it->second; // keep serving the last good version of this file
      }
    }
  }
  lastGoodContent_ = good;
  for (const auto& [file, content] : good) {
    api::decodeManifests(file, content, result.resources);
    result.files.push_back(file);
  }

  // Generation and creationTimestamp, as the API server keeps them.
  const std::string stamp = formatRfc3339(now);
  decltype(tracked_) seen;
  api::forEachObject(result.resources, [&](const char* group, const char* kind, api::ObjectMeta& meta,
                                           const api::SourceLocation&, const std::string& raw) {
    auto key = std::make_tuple(std::string(group), std::string(kind), meta.ns, meta.name);
    std::string spec = specOf(raw);
    Tracked t;
    if (auto it = tracked_.find(key); it != tracked_.end()) {
      t = it->second;
      if (t.specJson != spec) {
        t.generation++;
        t.specJson = spec;
      }
    } else {
      t.specJson = spec;
      t.generation = 1;
      t.creationTimestamp = meta.creationTimestamp.empty() ? stamp : meta.creationTimestamp;
    }
    if (!meta.creationTimestamp.empty()) {
      t.creationTimestamp = meta.creationTimestamp;
    }
    meta.generation = t.generation;
    meta.creationTimestamp = t.creationTimestamp;
    seen[key] = t;
  });
  // Namespaces that appear only in metadata.namespace exist implicitly.
  std::set<std::string> declared;
  for (const auto& n : result.resources.namespaces) {
    declared.insert(n.meta.name);
  }
  std::set<std::string> implicitNs;
  api::forEachObject(result.resources, [&](const char*, const char*, api::ObjectMeta& meta,
                                           const api::SourceLocation&, const std::string&) {
    if (!meta.ns.empty() && declared.count(meta.ns) == 0) {
      implicitNs.insert(meta.ns);
    }
  });
  for (const auto& ns : implicitNs) {
    api::Namespace n;
    n.meta.name = ns;
    auto key = std::make_tuple(std::string(), std::string("Namespace"), std::string(), ns);
    auto it = tracked_.find(key);
    n.meta.creationTimestamp = it != tracked_.end() ? it->second.creationTimestamp : stamp;
    seen[key] = Tracked{"", 1, n.meta.creationTimestamp};
    n.implicit = true;
    n.rawJson = nlohmann::json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}}.dump();
    result.resources.namespaces.push_back(std::move(n));
  }
  tracked_ = std::move(seen);
  for (auto& n : result.resources.namespaces) {
    n.meta.labels["kubernetes.io/metadata.name"] = n.meta.name;
  }
  return result;
}

} // namespace gantry::store
