#include "rauha-cli/controls_view.h"

namespace rauha::cli {

std::string ControlsTable(const ControlList& controls) {
  Table table({"CONTROL", "LAYER", "ALSO", "DETAIL"});
  for (const auto& c : controls) {
    std::string also;
    for (const auto& a : c.also()) also += (also.empty() ? "" : ",") + a;
    table.AddRow({c.control(), c.layer().empty() ? "NONE" : c.layer(), also.empty() ? "-" : also,
                  c.detail()});
  }
  return table.ToString();
}

Json ControlsToJson(const ControlList& controls) {
  Json out = Json::array();
  for (const auto& c : controls) {
    Json also = Json::array();
    for (const auto& a : c.also()) also.push_back(a);
    out.push_back({{"control", c.control()},
                   {"layer", c.layer()},
                   {"also", std::move(also)},
                   {"detail", c.detail()}});
  }
  return out;
}

}  // namespace rauha::cli
