#include "flags.h"

#include <cctype>
#include <fstream>

namespace jobstore::cli {

std::string EnvNameFor(const std::string& flag) {
  std::string name = "JOBSTORE_";
  for (char c : flag) {
    if (c == '-') {
      if (name.back() != '_') name += '_';
    } else {
      name += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  if (name.size() > 9 && name[9] == '_') name.erase(9, 1);  // "--x" -> JOBSTORE_X
  return name;
}

StatusOr<HostPort> ParseHostPort(const std::string& text) {
  auto bad = [&] { return InvalidArgument("--listen wants HOST:PORT, not '" + text + "'"); };
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find("]:");
    if (close == std::string::npos) return bad();
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0) return bad();
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
    return bad();
  }
  int p = std::stoi(port);
  if (p > 65535) return bad();
  return HostPort{host, p};
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

StatusOr<std::string> ReadSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgument("cannot read the token file '" + path + "'");
  std::string line;
  std::getline(in, line);
  auto first = line.find_first_not_of(" \t\r\n");
  auto last = line.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) return InvalidArgument("the token file '" + path + "' is empty");
  return line.substr(first, last - first + 1);
}

}  // namespace jobstore::cli
