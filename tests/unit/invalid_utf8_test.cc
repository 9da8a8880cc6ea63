#include "rauhad/server/invalid_utf8.h"

#include <gtest/gtest.h>

#include "rauha/v1/sandbox.pb.h"
#include "rauha/v1/zone.pb.h"

namespace rauha {
namespace {

TEST(InvalidUtf8Test, FieldNameFromProtobufsParseError) {
  EXPECT_EQ(InvalidUtf8FieldOf("String field 'rauha.zone.v1.CreateZoneRequest.name' contains "
                               "invalid UTF-8 data when parsing a protocol buffer. Use the "
                               "'bytes' type if you intend to send raw bytes. "),
            "rauha.zone.v1.CreateZoneRequest.name");
  // Serializing is rauhad's own doing, not the client's; other lines are not ours.
  EXPECT_EQ(InvalidUtf8FieldOf("String field 'a.B.c' contains invalid UTF-8 data when "
                               "serializing a protocol buffer."),
            "");
  EXPECT_EQ(InvalidUtf8FieldOf("Can't parse message of type \"x\""), "");
}

TEST(InvalidUtf8Test, PathOfTheFieldInTheRequest) {
  const auto* run = sandbox::v1::RunSandboxRequest::descriptor();
  EXPECT_EQ(RequestFieldPath(run, "rauha.sandbox.v1.RunSandboxRequest.command"), "command");
  EXPECT_EQ(RequestFieldPath(run, "rauha.sandbox.v1.RunSandboxRequest.EnvEntry.key"),
            "env (a key)");
  // A message inside the message: the path from the request.
  EXPECT_EQ(
      RequestFieldPath(zone::v1::GetZoneResponse::descriptor(), "rauha.zone.v1.ZoneInfo.name"),
      "zone.name");
  // Not a field of this request (a stale name from another parse): not blamed on it.
  EXPECT_EQ(RequestFieldPath(run, "rauha.zone.v1.CreateZoneRequest.name"), "");
  EXPECT_EQ(RequestFieldPath(nullptr, "x"), "");
}

TEST(InvalidUtf8Test, RequestTypeOfAGrpcMethod) {
  EXPECT_EQ(RequestTypeOf("/rauha.sandbox.v1.SandboxService/RunSandbox"),
            sandbox::v1::RunSandboxRequest::descriptor());
  EXPECT_EQ(RequestTypeOf("/rauha.zone.v1.ZoneService/Nope"), nullptr);
  EXPECT_EQ(RequestTypeOf("garbage"), nullptr);
}

}  // namespace
}  // namespace rauha
