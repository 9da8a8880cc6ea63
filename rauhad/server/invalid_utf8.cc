#include "rauhad/server/invalid_utf8.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/stubs/logging.h>

#include <cstdio>
#include <deque>
#include <set>
#include <utility>

#include "rauha-common/strcat.h"

namespace rauha {
namespace {

namespace gpb = google::protobuf;
using grpc::experimental::InterceptionHookPoints;

// The field whose bytes failed the last parse on this thread, until an interceptor takes it.
thread_local std::string pending_invalid_field;

void LogHandler(gpb::LogLevel level, const char* filename, int line, const std::string& message) {
  if (std::string field = InvalidUtf8FieldOf(message); !field.empty()) {
    // The client is told; a line per request would let any client flood the log.
    pending_invalid_field = std::move(field);
    return;
  }
  static const char* const kLevels[] = {"INFO", "WARNING", "ERROR", "FATAL"};
  const char* name = level >= 0 && level <= gpb::LOGLEVEL_FATAL ? kLevels[level] : "?";
  std::fprintf(stderr, "[libprotobuf %s %s:%d] %s\n", name, filename, line, message.c_str());
}

class InvalidUtf8Interceptor : public grpc::experimental::Interceptor {
 public:
  explicit InvalidUtf8Interceptor(const gpb::Descriptor* request) : request_(request) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      // Runs on the thread that just parsed (or failed to parse) this message.
      std::string field = std::exchange(pending_invalid_field, std::string());
      if (methods->GetRecvMessage() == nullptr && !field.empty() && path_.empty() &&
          request_ != nullptr) {
        path_ = RequestFieldPath(request_, field);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
        !path_.empty()) {
      // Whatever the handler made of a stream whose message did not parse (a client stream
      // reads it as its end), the request was invalid.
      methods->ModifySendStatus(InvalidUtf8Status(path_));
    }
    methods->Proceed();
  }

 private:
  const gpb::Descriptor* const request_;
  std::string path_;
};

class Factory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    return new InvalidUtf8Interceptor(method ? RequestTypeOf(method) : nullptr);
  }
};

}  // namespace

std::string InvalidUtf8FieldOf(std::string_view log_message) {
  constexpr std::string_view kPrefix = "String field '";
  constexpr std::string_view kSuffix = "' contains invalid UTF-8 data when parsing";
  if (!log_message.starts_with(kPrefix)) return "";
  size_t end = log_message.find(kSuffix, kPrefix.size());
  if (end == std::string_view::npos) return "";
  return std::string(log_message.substr(kPrefix.size(), end - kPrefix.size()));
}

std::string RequestFieldPath(const gpb::Descriptor* request, std::string_view field_full_name) {
  if (request == nullptr) return "";
  // Breadth first over the message types a request holds, so the shortest path is named.
  std::deque<std::pair<const gpb::Descriptor*, std::string>> queue{{request, ""}};
  std::set<const gpb::Descriptor*> seen{request};
  while (!queue.empty()) {
    auto [type, prefix] = queue.front();
    queue.pop_front();
    for (int i = 0; i < type->field_count(); ++i) {
      const gpb::FieldDescriptor* f = type->field(i);
      if (f->full_name() == field_full_name) {
        if (type->options().map_entry()) {
          // prefix is "env." for the map field env: its entries' key and value fields.
          return StrCat(prefix.substr(0, prefix.size() - 1), " (a ", f->name(), ")");
        }
        return StrCat(prefix, f->name());
      }
      const gpb::Descriptor* inner = f->message_type();
      if (inner != nullptr && seen.insert(inner).second) {
        queue.emplace_back(inner, StrCat(prefix, f->name(), "."));
      }
    }
  }
  return "";
}

const gpb::Descriptor* RequestTypeOf(std::string_view grpc_method) {
  // "/rauha.zone.v1.ZoneService/CreateZone" -> "rauha.zone.v1.ZoneService.CreateZone"
  if (grpc_method.starts_with('/')) grpc_method.remove_prefix(1);
  std::string name(grpc_method);
  size_t slash = name.find('/');
  if (slash == std::string::npos) return nullptr;
  name[slash] = '.';
  const gpb::MethodDescriptor* method =
      gpb::DescriptorPool::generated_pool()->FindMethodByName(name);
  return method ? method->input_type() : nullptr;
}

std::string InvalidUtf8Message(const std::string& path) {
  return StrCat("request field ", path,
                ": not valid UTF-8 (string fields carry UTF-8 text; nothing was done)");
}

grpc::Status InvalidUtf8Status(const std::string& path) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, InvalidUtf8Message(path));
}

std::string TakeInvalidUtf8Field() { return std::exchange(pending_invalid_field, std::string()); }

void CaptureInvalidUtf8ParseErrors() { gpb::SetLogHandler(&LogHandler); }

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
InvalidUtf8InterceptorFactory() {
  return std::make_unique<Factory>();
}

}  // namespace rauha
