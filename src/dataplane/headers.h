#pragma once
// The request head Gantry sends upstream, and the header mutations of RequestHeaderModifier and
// ResponseHeaderModifier (Gateway API spec 2.1). Pure string work, apart from the connection, so
// that it can be tested and measured on its own.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "dataplane/http1.h"
#include "dataplane/snapshot.h"

namespace gantry::dataplane {

// What the connection adds to a forwarded request.
struct Forwarding {
  std::string_view requestId;    // x-request-id (the client's, or a fresh UUID)
  std::string_view peer;         // appended to x-forwarded-for
  bool tls = false;              // x-forwarded-proto https or http
  std::string_view fallbackHost; // Host for a request without one (HTTP/1.0)
  std::string_view upgrade;      // "websocket" to pass an Upgrade on
};

// "HTTP/1.1 <status> <reason>\r\n" (RFC 9112 section 4).
void appendStatusLine(std::string& out, int status, std::string_view reason);
// The host a Host field value (or an absolute-form authority) names, for matching listeners and
// hostnames: without the port and a trailing dot, lower-cased; an IPv6 literal keeps its brackets.
std::string hostOnly(std::string_view hostHeader);
// A version 4 UUID made of 128 random bits `a` (high) and `b`, in its 36-character text form
// (RFC 9562 sections 4 and 5.4): the x-request-id of a request that came without one.
void formatUuid4(uint64_t a, uint64_t b, char (&out)[36]);
// True when `m` sets or removes header `name` (case-insensitive).
bool namedIn(const std::optional<ir::HeaderMutation>& m, std::string_view name);
// Appends the set and add field lines of `m`.
void appendMutation(std::string& out, const std::optional<ir::HeaderMutation>& m);
// The fields of the response the client gets: the backend's without hop-by-hop ones and without
// those the rule's or the backendRef's ResponseHeaderModifier sets or removes, then the
// modifiers' own (rule, then backendRef), then `extraLines` ("name: value\r\n" lines of Gantry's
// own, such as CORS). The views point into `backendFields`, the route and `extraLines`.
void responseFields(std::span<const http1::Header> backendFields, const CompiledRoute& route,
                    const ir::WeightedBackend& backend, std::string_view extraLines, http1::FieldList& out);
// Appends "name: value\r\n" for each field; appendField for one.
void appendFields(std::string& out, std::span<const http1::Header> fields);
void appendField(std::string& out, std::string_view name, std::string_view value);
// The HTTP/1.1 head for the backend: URLRewrite applied, hop-by-hop fields (and those the
// Connection field names) dropped, RequestHeaderModifier of the rule then of the backendRef,
// forwarding fields.
std::string upstreamHead(const http1::Head& head, const CompiledRoute& route, const ir::WeightedBackend& backend,
                         std::string_view path, std::string_view query, const Forwarding& f);

} // namespace gantry::dataplane
