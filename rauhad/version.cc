namespace rauha {
const char* DaemonVersion() { return RAUHA_VERSION; }
}  // namespace rauha
