// `gantry get`: kubectl-like reads from a running gantry's admin endpoint.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "app/commands.h"
#include "common/strings.h"
#include "common/yaml_out.h"

namespace gantry::app {

std::string adminGet(const std::string& hostPort, const std::string& path) {
  auto colon = hostPort.rfind(':');
  if (colon == std::string::npos) {
    throw std::runtime_error("--admin must be HOST:PORT");
  }
  std::string host = hostPort.substr(0, colon);
  int port = std::atoi(hostPort.c_str() + colon + 1);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    throw std::runtime_error("--admin: " + host + " is not an IPv4 address");
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot reach gantry's admin endpoint at " + hostPort + " (" +
                             strerror(errno) + "); is `gantry run` running?");
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + hostPort + "\r\nConnection: close\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    resp.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto end = resp.find("\r\n\r\n");
  if (end == std::string::npos || resp.compare(0, 12, "HTTP/1.1 200") != 0) {
    throw std::runtime_error("admin endpoint answered: " + resp.substr(0, resp.find("\r\n")));
  }
  return resp.substr(end + 4);
}

namespace {

struct KindInfo {
  std::string kind;
  std::string group; // apiVersion group, "" for core
  bool clusterScoped = false;
  std::string plural;
};

// kubectl names: lowercase kind, plural, short name; `kind.group` picks one of the two
// BackendTLSPolicy kinds (plain `backendtlspolicy` shows both).
std::optional<KindInfo> resolveKind(const std::string& in) {
  std::string k = toLower(in);
  std::string group;
  if (auto dot = k.find('.'); dot != std::string::npos) {
    group = k.substr(dot + 1);
    k = k.substr(0, dot);
  }
  static const std::vector<std::pair<std::vector<std::string>, KindInfo>> table = {
      {{"gatewayclass", "gatewayclasses", "gc"}, {"GatewayClass", "gateway.networking.k8s.io", true, "gatewayclasses"}},
      {{"gateway", "gateways", "gtw"}, {"Gateway", "gateway.networking.k8s.io", false, "gateways"}},
      {{"httproute", "httproutes"}, {"HTTPRoute", "gateway.networking.k8s.io", false, "httproutes"}},
      {{"referencegrant", "referencegrants", "refgrant"}, {"ReferenceGrant", "gateway.networking.k8s.io", false, "referencegrants"}},
      {{"backendtlspolicy", "backendtlspolicies", "btlspolicy"}, {"BackendTLSPolicy", "*", false, "backendtlspolicies"}},
      {{"service", "services", "svc"}, {"Service", "", false, "services"}},
      {{"endpointslice", "endpointslices"}, {"EndpointSlice", "discovery.k8s.io", false, "endpointslices"}},
      {{"endpoints", "ep"}, {"Endpoints", "", false, "endpoints"}},
      {{"secret", "secrets"}, {"Secret", "", false, "secrets"}},
      {{"configmap", "configmaps", "cm"}, {"ConfigMap", "", false, "configmaps"}},
      {{"namespace", "namespaces", "ns"}, {"Namespace", "", true, "namespaces"}},
  };
  for (const auto& [names, info] : table) {
    for (const auto& n : names) {
      if (n == k) {
        KindInfo out = info;
        if (!group.empty()) {
          out.group = group;
        }
        return out;
      }
    }
  }
  return std::nullopt;
}

std::string groupOf(const nlohmann::json& o) {
  std::string av = o.value("apiVersion", "");
  auto slash = av.find('/');
  return slash == std::string::npos ? "" : av.substr(0, slash);
}

std::string age(const std::string& ts) {
  struct tm tm {};
  if (ts.empty() || strptime(ts.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) {
    return "<unknown>";
  }
  int64_t s = nowSeconds() - static_cast<int64_t>(timegm(&tm));
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

std::string conditionStatus(const nlohmann::json& conditions, const std::string& type) {
  if (!conditions.is_array()) {
    return "Unknown";
  }
  for (const auto& c : conditions) {
    if (c.value("type", "") == type) {
      return c.value("status", "Unknown");
    }
  }
  return "Unknown";
}

void printTable(const KindInfo& kind, const std::vector<nlohmann::json>& items, bool showNs) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header;
  if (showNs) header.push_back("NAMESPACE");
  header.push_back("NAME");
  if (kind.kind == "Gateway") {
    header.insert(header.end(), {"CLASS", "ADDRESS", "PROGRAMMED"});
  } else if (kind.kind == "HTTPRoute") {
    header.push_back("HOSTNAMES");
  } else if (kind.kind == "BackendTLSPolicy" || kind.kind == "GatewayClass") {
    header.push_back("ACCEPTED");
  }
  header.push_back("AGE");
  rows.push_back(header);
  for (const auto& o : items) {
    std::vector<std::string> row;
    const auto& md = o["metadata"];
    if (showNs) row.push_back(md.value("namespace", ""));
    row.push_back(md.value("name", ""));
    const auto status = o.value("status", nlohmann::json::object());
    if (kind.kind == "Gateway") {
      row.push_back(o["spec"].value("gatewayClassName", ""));
      auto addrs = status.value("addresses", nlohmann::json::array());
      row.push_back(addrs.empty() ? "" : addrs[0].value("value", ""));
      row.push_back(conditionStatus(status.value("conditions", nlohmann::json()), "Programmed"));
    } else if (kind.kind == "HTTPRoute") {
      std::string hosts;
      for (const auto& h : o["spec"].value("hostnames", nlohmann::json::array())) {
        hosts += (hosts.empty() ? "" : ",") + h.get<std::string>();
      }
      row.push_back(hosts);
    } else if (kind.kind == "BackendTLSPolicy" || kind.kind == "GatewayClass") {
      auto conds = status.value("conditions", nlohmann::json());
      if (status.contains("ancestors") && !status["ancestors"].empty()) {
        conds = status["ancestors"][0].value("conditions", nlohmann::json());
      }
      row.push_back(conditionStatus(conds, "Accepted"));
    }
    row.push_back(age(md.value("creationTimestamp", "")));
    rows.push_back(row);
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      width[i] = std::max(width[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(width[i] - r[i].size() + 3, ' ');
      }
    }
    std::cout << line << "\n";
  }
}

} // namespace

int get(const GetArgs& args) {
  auto kind = resolveKind(args.kind);
  if (!kind) {
    std::cerr << "error: the server doesn't have a resource type \"" << args.kind << "\"\n";
    return 1;
  }
  auto doc = nlohmann::json::parse(adminGet(args.admin, "/status"));
  const std::string ns = args.ns.empty() ? "default" : args.ns;
  std::vector<nlohmann::json> items;
  for (const auto& o : doc["items"]) {
    if (o.value("kind", "") != kind->kind) {
      continue;
    }
    if (kind->group != "*" && groupOf(o) != kind->group) {
      continue;
    }
    const auto& md = o["metadata"];
    if (!kind->clusterScoped && !args.allNamespaces && md.value("namespace", "") != ns) {
      continue;
    }
    if (!args.name.empty() && md.value("name", "") != args.name) {
      continue;
    }
    items.push_back(o);
  }
  if (!args.name.empty() && items.empty()) {
    // kubectl's wording.
    std::cerr << "Error from server (NotFound): " << kind->plural << " \"" << args.name
              << "\" not found\n";
    return 1;
  }
  if (args.output.empty()) {
    if (items.empty()) {
      std::cerr << "No resources found" << (kind->clusterScoped || args.allNamespaces ? "" : " in " + ns + " namespace") << ".\n";
      return 0;
    }
    printTable(*kind, items, args.allNamespaces && !kind->clusterScoped);
    return 0;
  }
  nlohmann::json out;
  if (!args.name.empty() && items.size() == 1) {
    out = items.front();
  } else {
    out = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", items}};
  }
  if (args.output == "json") {
    std::cout << toJsonText(out, 4) << "\n";
  } else {
    std::cout << toYaml(out);
  }
  return 0;
}

} // namespace gantry::app
