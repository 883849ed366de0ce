#include "fuzz/targets.h"

#include <string>
#include <string_view>

#include "api/decode.h"
#include "dataplane/http1.h"
#include "translate/translator.h"

namespace gantry::fuzz {

void http1(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  dataplane::http1::Head req;
  auto r = dataplane::http1::parseRequest(in, 60 * 1024, req);
  if (r.status == dataplane::http1::ParseStatus::Done) {
    // Every view must lie inside the input.
    for (const auto& h : req.headers) {
      if (h.name.data() < in.data() || h.name.data() + h.name.size() > in.data() + in.size()) {
        __builtin_trap();
      }
    }
    dataplane::http1::ChunkedDecoder dec;
    size_t used = dec.feed(in.substr(req.headBytes));
    if (used > in.size() - req.headBytes) {
      __builtin_trap();
    }
  }
  dataplane::http1::Head resp;
  dataplane::http1::parseResponse(in, 64 * 1024, "GET", resp);
}

void manifest(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  api::ResourceSet rs;
  api::decodeManifests("fuzz.yaml", text, rs);
  translate::Options o;
  o.addressPool = {"127.0.0.1"};
  o.now = 1893456000;
  translate::translate(rs, o);
}

} // namespace gantry::fuzz
