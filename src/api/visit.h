#pragma once
// Visits every object of a ResourceSet generically: f(group, kind, meta, source, rawJson).
#include "api/types.h"

namespace gantry::api {

template <typename Set, typename F>
void forEachObject(Set& rs, F&& f) {
  for (auto& o : rs.gatewayClasses) f(kGatewayGroup, "GatewayClass", o.meta, o.source, o.rawJson);
  for (auto& o : rs.gateways) f(kGatewayGroup, "Gateway", o.meta, o.source, o.rawJson);
  for (auto& o : rs.httpRoutes) f(kGatewayGroup, "HTTPRoute", o.meta, o.source, o.rawJson);
  for (auto& o : rs.referenceGrants) f(kGatewayGroup, "ReferenceGrant", o.meta, o.source, o.rawJson);
  for (auto& o : rs.backendTLSPolicies) f(kGatewayGroup, "BackendTLSPolicy", o.meta, o.source, o.rawJson);
  for (auto& o : rs.albBackendTLSPolicies) f(kAlbGroup, "BackendTLSPolicy", o.meta, o.source, o.rawJson);
  for (auto& o : rs.services) f("", "Service", o.meta, o.source, o.rawJson);
  for (auto& o : rs.endpointSlices) f("discovery.k8s.io", "EndpointSlice", o.meta, o.source, o.rawJson);
  for (auto& o : rs.endpoints) f("", "Endpoints", o.meta, o.source, o.rawJson);
  for (auto& o : rs.secrets) f("", "Secret", o.meta, o.source, o.rawJson);
  for (auto& o : rs.configMaps) f("", "ConfigMap", o.meta, o.source, o.rawJson);
  for (auto& o : rs.namespaces) f("", "Namespace", o.meta, o.source, o.rawJson);
}

} // namespace gantry::api
