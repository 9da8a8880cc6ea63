// Per-control enforcement layers (ZoneInfo.controls, HostEnforcement.controls) as a table and
// as JSON, shared by `rauha zone show` and `rauha info`.
#pragma once

#include <string>

#include "rauha-cli/output.h"
#include "rauha/v1/zone.pb.h"

namespace rauha::cli {

using ControlList = google::protobuf::RepeatedPtrField<rauha::zone::v1::ControlStatus>;

// CONTROL  LAYER  ALSO  DETAIL; a control no layer enforces shows "NONE".
std::string ControlsTable(const ControlList& controls);
Json ControlsToJson(const ControlList& controls);

}  // namespace rauha::cli
