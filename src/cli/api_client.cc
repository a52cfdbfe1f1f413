#include "cli/api_client.h"

#include <utility>
#include <vector>

#include "http/client.h"

namespace dspool {
namespace {

StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409: return StatusCode::kFailedPrecondition;
    case 429: return StatusCode::kResourceExhausted;
    case 503: return StatusCode::kUnavailable;
    case 504: return StatusCode::kDeadlineExceeded;
    default: return StatusCode::kInternal;
  }
}

// The first line of `body`, at most 200 bytes, for an error message.
std::string Excerpt(const std::string& body) {
  std::string line = body.substr(0, body.find_first_of("\r\n"));
  if (line.size() > 200) line = line.substr(0, 200) + "...";
  return line.empty() ? "(empty body)" : line;
}

}  // namespace

ApiClient::ApiClient(Endpoint endpoint, std::string token, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), token_(std::move(token)), timeout_(timeout) {}

Result<Json> ApiClient::Call(const std::string& method, const std::string& target, const Json* body,
                             Json* error_out) const {
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Accept", "application/json");
  if (!token_.empty()) headers.emplace_back("Authorization", "Bearer " + token_);
  std::string body_text;
  if (body != nullptr) body_text = body->dump(-1, ' ', false, Json::error_handler_t::replace);

  DSP_ASSIGN_OR_RETURN(Response response, Client::Do(endpoint_, method, target, body_text, headers, timeout_));

  Json parsed = response.body.empty() ? Json() : Json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (response.status >= 200 && response.status < 300) {
    if (parsed.is_discarded()) {
      return Internal(endpoint_.ToString() + " answered " + method + " " + target +
                      " with a body that is not JSON: " + Excerpt(response.body));
    }
    return parsed;
  }
  if (parsed.is_object()) {
    auto error = parsed.find("error");
    if (error != parsed.end() && error->is_object()) {
      if (error_out) *error_out = *error;
      auto code = error->find("code");
      auto message = error->find("message");
      if (message != error->end() && message->is_string() && !message->get_ref<const std::string&>().empty()) {
        const std::string name = code != error->end() && code->is_string() ? code->get<std::string>() : "";
        StatusCode status_code = name.empty() ? CodeForHttpStatus(response.status) : StatusCodeFromName(name);
        if (status_code == StatusCode::kOk) status_code = StatusCode::kInternal;
        if (!name.empty() && StatusCodeName(status_code) != name) {
          // An ARM error (docs/api.md, deployments): az's "Code: message",
          // with each detail's.
          std::string text = name + ": " + message->get<std::string>();
          for (const Json& d : error->value("details", Json::array())) {
            if (d.is_object()) text += " " + d.value("code", "") + ": " + d.value("message", "");
          }
          return Status(CodeForHttpStatus(response.status), text);
        }
        return Status(status_code, message->get<std::string>());
      }
    }
  }
  return Status(
      CodeForHttpStatus(response.status),
      endpoint_.ToString() + " answered HTTP " + std::to_string(response.status) + ": " + Excerpt(response.body));
}

}  // namespace dspool
