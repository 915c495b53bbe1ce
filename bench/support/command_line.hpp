// The benchmarks' command lines: sizes with binary suffixes and a walker over the options.
#ifndef SLUICE_BENCH_SUPPORT_COMMAND_LINE_HPP
#define SLUICE_BENCH_SUPPORT_COMMAND_LINE_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace sluice::bench {

/// "4096", "64K", "64KiB", "1G", "1GiB", "512M": a size with an optional binary suffix.
inline std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (value > (UINT64_MAX - 9) / 10)
      return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (i == 0)
    return std::nullopt;
  std::string_view suffix = text.substr(i);
  int shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
    case 'k':
    case 'K':
      shift = 10;
      break;
    case 'm':
    case 'M':
      shift = 20;
      break;
    case 'g':
    case 'G':
      shift = 30;
      break;
    default:
      return std::nullopt;
    }
    suffix.remove_prefix(1);
    if (suffix != "" && suffix != "B" && suffix != "iB")
      return std::nullopt;
  }
  if (shift > 0 && value > (UINT64_MAX >> shift))
    return std::nullopt;
  return value << shift;
}

/// Walks a benchmark's command line one option at a time. A missing or bad value is reported
/// on stderr and ends the walk; parse_args then returns ok(), false, and main exits with 2.
class command_line {
public:
  command_line(int argc, char** argv) : argc_(argc), argv_(argv) {}

  /// Steps to the next option; false past the last one or after an error.
  bool next() {
    if (!ok_ || ++i_ >= argc_)
      return false;
    option_ = argv_[i_];
    return true;
  }
  std::string_view option() const { return option_; }
  bool ok() const { return ok_; }

  /// The argument after the option, or nullptr.
  const char* value() {
    if (i_ + 1 < argc_)
      return argv_[++i_];
    fail("%s needs a value\n", option_);
    return nullptr;
  }

  /// The option's value: a size (see parse_size) from `lo` to `hi`.
  std::optional<std::uint64_t> size(std::uint64_t lo, std::uint64_t hi) {
    const char* v = value();
    if (!v)
      return std::nullopt;
    auto n = parse_size(v);
    return n && *n >= lo && *n <= hi ? n : bad(v);
  }

  /// The option's value: a number in strtod's syntax from `lo` to `hi`.
  std::optional<double> number(double lo, double hi) {
    const char* v = value();
    if (!v)
      return std::nullopt;
    char* end = nullptr;
    double d = std::strtod(v, &end);
    return end != v && *end == '\0' && d >= lo && d <= hi ? std::optional(d) : bad(v);
  }

  /// Adds the items of the option's comma-separated value to `out`, as long as `known`
  /// accepts them; the first it does not is reported as an unknown `what`.
  template <class Known>
  void list(const char* what, std::set<std::string>& out, Known known) {
    const char* v = value();
    for (std::string_view rest = v ? v : ""; !rest.empty();) {
      auto comma = rest.find(',');
      std::string item(rest.substr(0, comma));
      if (!known(item)) {
        fail("unknown %s: %s\n", what, item.c_str());
        return;
      }
      out.insert(item);
      rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
    }
  }

  /// For an option the benchmark does not take: --help or -h prints `usage` and exits with 0;
  /// anything else is reported, with the usage.
  void help_or_unknown(void (*usage)(const char* argv0)) {
    if (option() == "--help" || option() == "-h") {
      usage(argv_[0]);
      std::exit(0);
    }
    fail("unknown option: %s\n", option_);
    usage(argv_[0]);
  }

  /// Reports a bad command line (printf's arguments) and ends the walk.
  template <class... Args>
  std::nullopt_t fail(const char* fmt, Args... args) {
    std::fprintf(stderr, fmt, args...);
    ok_ = false;
    return std::nullopt;
  }

private:
  std::nullopt_t bad(const char* v) { return fail("bad value for %s: %s\n", option_, v); }

  int argc_;
  char** argv_;
  int i_ = 0;
  const char* option_ = "";
  bool ok_ = true;
};

} // namespace sluice::bench

#endif
