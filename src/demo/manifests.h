#pragma once
// The how-to's manifests (examples/backend-mtls), embedded at build time.
namespace gantry::demo {
extern const char* const kGatewayYaml;
extern const char* const kHttpRouteYaml;
extern const char* const kBackendTlsPolicyYaml;
extern const char* const kDeploymentYaml;
} // namespace gantry::demo
