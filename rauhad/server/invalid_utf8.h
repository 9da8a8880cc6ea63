// Requests whose string fields hold bytes that are not UTF-8. protobuf refuses to parse them
// (proto3 strings are UTF-8) before any handler runs, and gRPC then answers INTERNAL with an
// empty message (UNIMPLEMENTED for a callback stream) while protobuf logs the field's name,
// once per request. This turns that into INVALID_ARGUMENT naming the field, for every method
// of every service, and keeps those lines out of rauhad's log.
//
// How: protobuf's log handler keeps the name of the field that failed, per thread; gRPC
// parses a request and then runs the server interceptors' POST_RECV_MESSAGE on that same
// thread (sync and callback servers alike, and each message of a client stream), where the
// interceptor takes the name if the message did not parse; the status it sends is rewritten.
// A name is only used when the field belongs to the method's request type (descriptors), so a
// stale one cannot be blamed on an unrelated request.
#pragma once

#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <string_view>

namespace rauha {

// Routes protobuf's log through a handler that captures "invalid UTF-8 when parsing" errors
// and prints everything else as protobuf does. Call once, before the server starts.
void CaptureInvalidUtf8ParseErrors();

// The interceptor factory to register with the server builder.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
InvalidUtf8InterceptorFactory();

// From protobuf's log message, the field's full name ("rauha.zone.v1.CreateZoneRequest.name");
// "" if `log_message` is not an invalid-UTF-8 parse error.
std::string InvalidUtf8FieldOf(std::string_view log_message);

// Where the field `field_full_name` is in a `request`: "name", "command", "policy.rules.name",
// "env (a key)"; "" when no field of `request` or of a message in it has that name.
std::string RequestFieldPath(const google::protobuf::Descriptor* request,
                             std::string_view field_full_name);

// The request type of gRPC method "/pkg.Service/Method" in the generated pool, or null.
const google::protobuf::Descriptor* RequestTypeOf(std::string_view grpc_method);

// The status a request with invalid UTF-8 at `path` gets (gRPC), and its message.
grpc::Status InvalidUtf8Status(const std::string& path);
std::string InvalidUtf8Message(const std::string& path);

// For a transport without interceptors (the ttrpc endpoint): the full name of the field whose
// bytes failed the last parse on this thread, "" if none; cleared by the call.
std::string TakeInvalidUtf8Field();

}  // namespace rauha
