#include <sluice/redis/address.hpp>

#include <algorithm>
#include <stdexcept>

namespace sluice::redis {

namespace {
[[noreturn]] void bad(std::string_view text, const std::string& why) {
  throw std::invalid_argument("sluice::redis: bad store address \"" + std::string(text) +
                              "\": " + why + " (expected unix:PATH or redis://HOST:PORT)");
}
} // namespace

address address::parse(std::string_view text) {
  address a;
  if (text.starts_with("unix:")) {
    a.type = kind::unix_socket;
    a.path = std::string(text.substr(5));
    if (a.path.starts_with("//")) // unix:///path, as URLs spell it
      a.path.erase(0, 2);
    if (a.path.empty())
      bad(text, "no socket path");
    return a;
  }
  if (!text.starts_with("redis://"))
    bad(text, "unknown scheme");
  std::string_view rest = text.substr(8);
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/")
      bad(text, "a database number or path is not supported");
    rest = rest.substr(0, slash);
  }
  if (rest.find('@') != std::string_view::npos)
    bad(text, "credentials are not supported");
  a.type = kind::tcp;
  std::string_view port = "6379"; // Redis's, when the address names none
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close == std::string_view::npos)
      bad(text, "unclosed '[' in the host");
    a.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':')
        bad(text, "junk after the host");
      port = after.substr(1);
    }
  } else {
    auto colon = rest.rfind(':');
    if (colon != std::string_view::npos && rest.find(':') != colon)
      bad(text, "an IPv6 host must be in brackets");
    a.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos)
      port = rest.substr(colon + 1);
  }
  if (a.host.empty())
    bad(text, "no host");
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535)
    bad(text, "the port must be a number from 1 to 65535");
  a.port = std::string(port);
  return a;
}

std::string address::to_string() const {
  if (type == kind::unix_socket)
    return "unix:" + path;
  bool v6 = host.find(':') != std::string::npos;
  return "redis://" + (v6 ? "[" + host + "]" : host) + ":" + port;
}

} // namespace sluice::redis
