#pragma once
// Status bookkeeping and rendering (main thread only).
//  - StatusBook keeps lastTransitionTime stable: it changes only when a condition's status does.
//  - renderObjects() turns resources + statuses into the documents `gantry get` and /status show:
//    the object as written, with metadata.generation/creationTimestamp and its status.
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "api/types.h"
#include "translate/translator.h"

namespace gantry::controller {

class StatusBook {
public:
  // Fills every condition's lastTransitionTime in `result`: the previous time when the condition's
  // status is unchanged, `nowStamp` otherwise.
  void stamp(translate::Result& result, const std::string& nowStamp);

private:
  std::map<std::string, std::pair<std::string, std::string>> previous_; // path -> (status, time)
};

nlohmann::json conditionsJson(const std::vector<api::Condition>& cs);
nlohmann::json statusJson(const translate::ObjectKey& key, const translate::ObjectStatus& st);

// Every object with its status, ordered by kind, namespace, name.
nlohmann::json renderObjects(const api::ResourceSet& resources, const translate::Result& result);

} // namespace gantry::controller
