// The hostname a zone's tasks see. A zone name may be anything the API accepts (128 bytes,
// spaces, dots, UTF-8), a hostname must be one RFC 1123 label, so a name that is not one gets a
// derived hostname, stable and distinct per name, instead of being cut silently.
#pragma once

#include <string>
#include <string_view>

namespace rauha {

inline constexpr size_t kMaxHostnameLabel = 63;

// True for 1-63 ASCII letters, digits and '-', not starting or ending with '-'.
bool IsHostnameLabel(std::string_view s);

// The longest hostname the kernel's UTS namespace holds (__NEW_UTS_LEN).
inline constexpr size_t kMaxHostname = 64;

// True for one or more labels (IsHostnameLabel) joined by '.', at most kMaxHostname bytes: what
// a zone may be given as its hostname (a pod's; a hostNetwork pod's is the node's, maybe a
// fully qualified name).
bool IsHostname(std::string_view s);

// The zone name itself when it is a valid label. Otherwise: every run of characters that are
// not ASCII letters or digits becomes one '-', leading and trailing '-' go, the rest is cut to
// 54 characters, and '-' plus 8 hex digits of a hash (FNV-1a) of the whole name are appended,
// so two names never share a hostname by accident ("my_zone.v2" -> "my-zone-v2-<hash>"). A
// name with no letter or digit becomes "zone-<hash>".
std::string ZoneHostname(std::string_view zone_name);

}  // namespace rauha
