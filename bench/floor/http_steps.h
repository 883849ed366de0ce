#pragma once
// The HTTP work of a gateway, done with Gantry's own functions and nothing around them: the part
// `http_relay --http` adds to the floor. No Boost in this header: tls_relay.cc stays a plain
// epoll program.
#include <memory>
#include <string>

namespace gantry::bench {

struct HttpConfig; // the compiled routes (a Gantry snapshot)

// Loads a Gantry configuration folder as `gantry run` would (file store, translator, snapshot).
// Null on failure, with `error` set.
std::shared_ptr<const HttpConfig> loadHttpConfig(const std::string& dir, int portOffset, std::string& error);

// Per connection pair: what a request left for its response (the route and backend it took).
struct HttpExchange {
  const void* route = nullptr;
  const void* backend = nullptr;
  bool tls = false;
};

// Turns the complete requests at the front of `in` into upstream heads (and bodies) appended to
// `out`, as Gantry's request path does: parse and check the head (RFC 9112), route it, build the
// upstream head (hop-by-hop fields dropped, x-forwarded-*, x-request-id). Consumed bytes leave
// `in`. False: a request this relay does not serve (malformed, no route, a chunked body).
bool forwardRequests(const HttpConfig& config, HttpExchange& x, std::string& in, std::string& out);

// The same for responses: parse the backend's head, build the client's (hop-by-hop fields
// dropped, ResponseHeaderModifier), append it and the body once all of it is in `in`.
bool forwardResponses(HttpExchange& x, std::string& in, std::string& out);

} // namespace gantry::bench
