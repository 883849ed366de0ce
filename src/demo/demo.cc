// `gantry demo`: the how-to's backend-mTLS scenario, self-contained on 127.0.0.1.
//   fresh CA (CN=foo) and certificates shaped like the sample's, valid today, the client
//   certificate with the clientAuth usage -> an nginx backend that enforces client certificates
//   -> the how-to's manifests in a temporary folder -> `gantry run` on https://127.0.0.1:8443.
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "common/yaml_out.h"
#include "demo/manifests.h"
#include "pki/pki.h"

namespace gantry::app {

namespace fs = std::filesystem;

namespace {

void writeFile(const fs::path& p, const std::string& content, fs::perms perms = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  fs::permissions(p, perms);
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  while (i + 2 < in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
    i += 3;
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string tlsSecret(const std::string& name, const pki::Issued& cert) {
  return "apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + name +
         "\n  namespace: test-infra\ntype: kubernetes.io/tls\ndata:\n  tls.crt: " + base64(cert.certPem) +
         "\n  tls.key: " + base64(cert.keyPem) + "\n";
}

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool portOpen(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

std::string findNginx() {
  for (const char* p : {"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"}) {
    if (access(p, X_OK) == 0) {
      return p;
    }
  }
  return "";
}

} // namespace

int demo(const RunArgs& base) {
  const std::string nginx = findNginx();
  if (nginx.empty()) {
    std::cerr << "gantry demo: nginx is needed as the mTLS backend; run scripts/setup.sh (or "
                 "apt-get install nginx-light)\n";
    return 1;
  }
  char tmpl[] = "/tmp/gantry-demo-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::cerr << "gantry demo: cannot create a temporary folder\n";
    return 1;
  }
  const fs::path dir = tmpl;
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  const fs::path backendDir = dir / "backend";
  const fs::path configDir = dir / "config";
  fs::create_directories(backendDir / "logs");
  fs::create_directories(configDir);

  // Certificates shaped like the sample's (issuer CN=foo), but valid today.
  const int64_t now = nowSeconds();
  const int64_t from = now - 3600;
  const int64_t until = now + 365 * 86400;
  auto ca = pki::makeCa("foo", from, now + 20 * 365 * 86400);
  auto backendCert = pki::issue(ca, {"backend.com", {"backend.com"}, true, false, from, until});
  auto frontendCert = pki::issue(ca, {"frontend.com", {"frontend.com"}, true, false, from, until});
  auto clientCert = pki::issue(ca, {"gateway-client-cert", {"gateway-client-cert"}, false, true, from, until});

  // The backend: the how-to's default.conf, plus `ssl_verify_client on` so mTLS is enforced.
  const uint16_t backendPort = freePort();
  writeFile(backendDir / "tls.crt", backendCert.certPem);
  writeFile(backendDir / "tls.key", backendCert.keyPem, fs::perms::owner_read | fs::perms::owner_write);
  writeFile(backendDir / "ca.crt", ca.certPem);
  std::string conf = std::string(geteuid() == 0 ? "user root;\n" : "") +
                     "worker_processes 1;\npid " + (backendDir / "nginx.pid").string() +
                     ";\nerror_log " + (backendDir / "logs/error.log").string() +
                     ";\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n"
                     "  client_body_temp_path " + (backendDir / "tmp").string() + ";\n"
                     "  server {\n    listen 127.0.0.1:" + std::to_string(backendPort) +
                     " ssl;\n    server_name backend.com;\n    ssl_certificate " +
                     (backendDir / "tls.crt").string() + ";\n    ssl_certificate_key " +
                     (backendDir / "tls.key").string() + ";\n    ssl_client_certificate " +
                     (backendDir / "ca.crt").string() +
                     ";\n    ssl_verify_client on;\n    location / {\n      return 200 \"Hello World!\";\n    }\n  }\n}\n";
  writeFile(backendDir / "nginx.conf", conf);

  pid_t nginxPid = fork();
  if (nginxPid == 0) {
    setpgid(0, 0);
    execl(nginx.c_str(), nginx.c_str(), "-p", backendDir.c_str(), "-c", (backendDir / "nginx.conf").c_str(),
          "-g", "daemon off;", static_cast<char*>(nullptr));
    _exit(127);
  }
  auto cleanup = [&] {
    if (nginxPid > 0) {
      kill(nginxPid, SIGTERM);
      int st = 0;
      waitpid(nginxPid, &st, 0);
      nginxPid = -1;
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
  };
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    up = portOpen(backendPort);
    int st = 0;
    if (waitpid(nginxPid, &st, WNOHANG) == nginxPid) {
      nginxPid = -1;
      break;
    }
  }
  if (!up) {
    std::cerr << "gantry demo: the nginx backend did not start; see " << (backendDir / "logs/error.log") << "\n";
    std::ifstream log(backendDir / "logs/error.log");
    std::cerr << log.rdbuf();
    cleanup();
    return 1;
  }

  // The how-to's manifests, verbatim, plus fresh Secrets and an EndpointSlice for mtls-app.
  writeFile(configDir / "gateway.yaml", demo::kGatewayYaml);
  writeFile(configDir / "httproute.yaml", demo::kHttpRouteYaml);
  writeFile(configDir / "backendtlspolicy.yaml", demo::kBackendTlsPolicyYaml);
  writeFile(configDir / "deployment.yaml", demo::kDeploymentYaml);
  writeFile(configDir / "secrets.yaml",
            tlsSecret("backend.com", backendCert) + "---\n" + tlsSecret("frontend.com", frontendCert) +
                "---\n" + tlsSecret("gateway-client-cert", clientCert) +
                "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ca.bundle\n  namespace: test-infra\ndata:\n  ca.crt: " +
                base64(ca.certPem) + "\n",
            fs::perms::owner_read | fs::perms::owner_write);
  writeFile(configDir / "endpointslice.yaml",
            "# Where the Deployment's pods would be: the local nginx backend.\n"
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: mtls-app-local\n"
            "  namespace: test-infra\n  labels:\n    kubernetes.io/service-name: mtls-app\naddressType: IPv4\n"
            "ports:\n- port: " + std::to_string(backendPort) + "\n  protocol: TCP\nendpoints:\n- addresses:\n  - 127.0.0.1\n"
            "  conditions:\n    ready: true\n");

  RunArgs args = base;
  args.configDir = configDir.string();
  args.portOffset = 8000;
  args.addressPool = {"127.0.0.1"};
  bool portBusy = false;
  int rc = run(args, [&](const std::string& statusJson) {
    // A listener that could not bind (8443 in use) makes the demo pointless: say so and stop.
    auto doc0 = nlohmann::json::parse(statusJson);
    for (const auto& o : doc0["items"]) {
      if (o.value("kind", "") != "Gateway" || !o.contains("status")) {
        continue;
      }
      for (const auto& l : o["status"].value("listeners", nlohmann::json::array())) {
        for (const auto& c : l["conditions"]) {
          if (c.value("reason", "") == "PortUnavailable") {
            std::cerr << "gantry demo: " << c.value("message", "") << "\n"
                      << "Stop whatever listens on 127.0.0.1:8443 and run the demo again.\n";
            portBusy = true;
            raise(SIGTERM);
            return;
          }
        }
      }
    }
    std::cout << "\n=== Gantry demo: the how-to's backend-mTLS scenario on localhost ===\n"
              << "manifests:      " << configDir.string() << "\n"
              << "backend:        nginx (pid " << nginxPid << ") on https://127.0.0.1:" << backendPort
              << ", ssl_verify_client on\n"
              << "gateway:        https://127.0.0.1:8443 (listener port 443 + --port-offset 8000)\n"
              << "admin:          http://" << args.admin << "/status\n\n";
    std::cout << "Statuses (gantry get gateway gateway-01 -n test-infra -o yaml, and so on):\n";
    if (!statusJson.empty()) {
      auto doc = nlohmann::json::parse(statusJson);
      for (const auto& o : doc["items"]) {
        std::string kind = o.value("kind", "");
        if (kind == "GatewayClass" || kind == "Gateway" || kind == "HTTPRoute" || kind == "BackendTLSPolicy") {
          std::cout << "---\n" << toYaml(o);
        }
      }
      for (const auto& w : doc["warnings"]) {
        std::cout << "warning: " << w.get<std::string>() << "\n";
      }
    }
    std::cout << "\nTry it:\n  curl --insecure https://127.0.0.1:8443/\n"
              << "  gantry get gateway gateway-01 -n test-infra -o yaml --admin " << args.admin
              << "\nCtrl-C stops the gateway and the backend.\n\n"
              << std::flush;
  });
  cleanup();
  return portBusy ? 1 : rc;
}

} // namespace gantry::app
