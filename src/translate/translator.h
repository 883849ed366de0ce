#pragma once
// The heart of Gantry: Gateway API semantics as a pure function. Resources in; data-plane IR and
// every resource's status out. No I/O and no clock (the caller passes `now`, which is only used to
// warn about certificate validity). Invalid input never fails translation: it becomes a status
// condition plus a safe IR fallback (a route that answers 500, a listener not programmed).
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "api/types.h"
#include "ir/ir.h"

namespace gantry::translate {

// Identifies an object: group is "" for core kinds, "gateway.networking.k8s.io", or
// "alb.networking.azure.io" (which tells the two BackendTLSPolicy kinds apart).
struct ObjectKey {
  std::string group;
  std::string kind;
  std::string ns;
  std::string name;
  auto operator<=>(const ObjectKey&) const = default;
  std::string str() const; // kind/ns/name
};

struct ListenerStatus {
  std::string name;
  std::vector<api::RouteGroupKind> supportedKinds;
  int32_t attachedRoutes = 0;
  std::vector<api::Condition> conditions;
};

// A route's entry per parentRef, or a policy's entry per ancestor Gateway.
struct ParentStatus {
  api::ParentReference parentRef; // group, kind and namespace always filled in
  std::string controllerName;
  std::vector<api::Condition> conditions;
};

struct ObjectStatus {
  std::vector<api::Condition> conditions;      // GatewayClass, Gateway, alb BackendTLSPolicy
  std::vector<api::GatewayAddress> addresses;  // Gateway
  std::vector<ListenerStatus> listeners;       // Gateway
  std::vector<ParentStatus> parents;           // HTTPRoute parents / BackendTLSPolicy ancestors
  std::vector<std::string> supportedFeatures;  // GatewayClass
};

// Something a user should know that is not a status condition (e.g. an expired certificate).
struct Warning {
  ObjectKey object;
  std::string message;
};

struct Options {
  std::string controllerName = "alb.networking.azure.io/alb-controller";
  std::vector<std::string> addressPool; // handed to Gateways in order
  // Named frontends (--frontend NAME=IP) for addresses of type alb.networking.azure.io/alb-frontend.
  std::map<std::string, std::string> frontends;
  int32_t portOffset = 0;
  // Resolves a Gateway address of type Hostname to IP addresses (empty: does not resolve). The
  // translator does no I/O itself: `gantry run` passes the system resolver, tests a fixed table.
  std::function<std::vector<std::string>(const std::string&)> resolveHostname;
  int64_t now = 0; // Unix seconds, for certificate validity warnings
};

struct Result {
  ir::Config ir;
  std::map<ObjectKey, ObjectStatus> statuses;
  std::vector<Warning> warnings;
};

// Translates one snapshot of resources. Pure and deterministic: the same input gives the same
// output, byte for byte once rendered.
Result translate(const api::ResourceSet& resources, const Options& options);

// True when every status in `result` is healthy: each Accepted/ResolvedRefs/Programmed condition
// is True. `gantry check` exits non-zero otherwise.
bool allHealthy(const Result& result);

} // namespace gantry::translate
