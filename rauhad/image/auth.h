// Registry authentication inputs: the WWW-Authenticate challenge a registry answers 401 with,
// and basic credentials from a ~/.docker/config.json-style file ({"auths": {HOST: {"auth":
// base64("user:password")} or {"username", "password"}}}). Pure, unit-tested.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha::image {

struct Challenge {
  std::string scheme;                         // "bearer" or "basic" (lower case)
  std::map<std::string, std::string> params;  // realm, service, scope, ...
};

// The first challenge of a WWW-Authenticate header value, e.g.
// `Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"`.
absl::StatusOr<Challenge> ParseChallenge(std::string_view header);

struct Credentials {
  std::string username;
  std::string password;
};

// Credentials for `registry` ("127.0.0.1:5000", "docker.io") from the JSON text of an auths
// file; nullopt when the file has none for it. Keys may carry a scheme and a path
// ("https://index.docker.io/v1/"). InvalidArgument when the file is not such JSON.
absl::StatusOr<std::optional<Credentials>> FindCredentials(std::string_view auths_json,
                                                           const std::string& registry);

}  // namespace rauha::image
