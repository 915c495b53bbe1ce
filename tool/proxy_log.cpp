#include "proxy_log.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace sluice::proxy {

std::string iso8601(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  // Whole seconds rounded towards the past, so that times before 1970 keep a positive
  // fraction.
  auto secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
  auto frac = ms - secs * 1000;
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char text[96]; // what the warning counts for any int; 24 in fact
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(frac));
  return text;
}

std::string json_quote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char escape[8];
        std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned>(c));
        out += escape;
      } else {
        out += c; // UTF-8 passes as it is
      }
    }
  }
  out += '"';
  return out;
}

log_field::log_field(std::string_view key, double value) : key(key) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", value);
  json = text;
}

log_field log_field::raw(std::string_view key, std::string json) {
  log_field f;
  f.key = key;
  f.json = std::move(json);
  return f;
}

std::string format_line(log_format format, std::chrono::system_clock::time_point time,
                        std::string_view event, std::string_view message,
                        std::initializer_list<log_field> fields) {
  std::string line;
  if (format == log_format::text) {
    line = iso8601(time);
    line += ' ';
    line += message;
  } else {
    line = "{\"time\":\"" + iso8601(time) + "\",\"event\":" + json_quote(event) +
           ",\"message\":" + json_quote(message);
    for (const log_field& f : fields) {
      line += ',';
      line += json_quote(f.key);
      line += ':';
      line += f.json;
    }
    line += '}';
  }
  line += '\n';
  return line;
}

void log_queue::push(std::string_view line) {
  if (gone_ || size() + line.size() > capacity_) {
    ++dropped_;
    return;
  }
  if (head_ > 0 && head_ >= buffer_.size() / 2) { // keep the buffer from growing at its front
    buffer_.erase(0, head_);
    head_ = 0;
  }
  buffer_ += line;
}

std::uint64_t log_queue::lines() const {
  return static_cast<std::uint64_t>(
      std::count(buffer_.begin() + static_cast<std::ptrdiff_t>(head_), buffer_.end(), '\n'));
}

void log_queue::lose_all() {
  gone_ = true;
  dropped_ += lines(); // a line partly written counts: its start went, its end will not
  buffer_.clear();
  head_ = 0;
}

} // namespace sluice::proxy
