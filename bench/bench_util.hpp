// Small helpers shared by sluice's benchmarks: timing, repetition, option parsing and
// printing. No framework: each benchmark is one plain executable that prints one table.
#ifndef SLUICE_BENCH_UTIL_HPP
#define SLUICE_BENCH_UTIL_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::bench {

using bench_clock = std::chrono::steady_clock;

/// Seconds taken by `f()`.
template <class F>
double time_seconds(F&& f) {
  auto start = bench_clock::now();
  std::forward<F>(f)();
  return std::chrono::duration<double>(bench_clock::now() - start).count();
}

/// Keeps the compiler from dropping stores into `p` whose results nobody reads.
inline void keep(const void* p) {
  asm volatile("" : : "r"(p) : "memory");
}

/// The rates (units per second) of a contender's timed runs.
struct rates {
  std::vector<double> runs;

  double best() const { return runs.empty() ? 0 : *std::max_element(runs.begin(), runs.end()); }
  double median() const {
    if (runs.empty())
      return 0;
    std::vector<double> sorted = runs;
    std::sort(sorted.begin(), sorted.end());
    std::size_t n = sorted.size();
    return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
};

/// One of the things compared in a benchmark case. `run()` does one run and returns the
/// units it moved (bytes, round trips); it throws when its own checks fail.
struct contender {
  std::string name;
  std::function<std::uint64_t()> warm_up;
  std::function<std::uint64_t()> run;
  rates result{};
  std::string failure{}; // what a run threw; the contender is dropped from then on
};

/// Warms every contender up once (untimed), then does `reps` rounds in which each runs once,
/// timed. Interleaving makes a slow spell of a shared machine hit all contenders alike
/// instead of whichever happened to run then.
inline void measure_round_robin(std::vector<contender>& contenders, int reps) {
  auto attempt = [](contender& c, auto&& f) {
    if (!c.failure.empty())
      return;
    try {
      f();
    } catch (const std::exception& e) {
      c.failure = e.what();
    }
  };
  for (auto& c : contenders)
    attempt(c, [&] { c.warm_up(); });
  for (int i = 0; i < reps; ++i)
    for (auto& c : contenders)
      attempt(c, [&] {
        double units = 0;
        double s = time_seconds([&] { units = static_cast<double>(c.run()); });
        c.result.runs.push_back(s > 0 ? units / s : 0);
      });
}

/// A page-aligned byte buffer. Benchmarks copy between two of these, so that every peer sees
/// the same relative alignment: with malloc's, a destination 16 bytes past its source modulo
/// 4 KiB (the usual layout of two blocks allocated in a row) halves memcpy's speed on x86
/// (4K aliasing of loads with earlier stores).
class page_buffer {
public:
  static constexpr std::size_t page = 4096;

  explicit page_buffer(std::size_t n)
      : data_(static_cast<std::byte*>(std::aligned_alloc(page, (n + page - 1) / page * page))),
        size_(n) {
    if (!data_)
      throw std::bad_alloc();
    std::fill_n(data_.get(), n, std::byte{0});
  }

  std::byte* data() const { return data_.get(); }
  std::size_t size() const { return size_; }
  std::span<std::byte> span() const { return {data_.get(), size_}; }

private:
  struct release {
    void operator()(std::byte* p) const { std::free(p); }
  };
  std::unique_ptr<std::byte, release> data_;
  std::size_t size_;
};

/// Thrown by a benchmark whose own check of what was moved fails.
struct check_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check(bool ok, const std::string& what) {
  if (!ok)
    throw check_failed(what);
}

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

/// "64 KiB", "1 GiB", "3000 B": the largest binary unit that divides `bytes` exactly.
inline std::string format_size(std::uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (u < 3 && bytes >= 1024 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++u;
  }
  return std::to_string(bytes) + " " + units[u];
}

/// A plain fixed-width table: the first column left-aligned, the others right-aligned.
class table {
public:
  explicit table(std::vector<int> widths) : widths_(std::move(widths)) {}

  void row(const std::vector<std::string>& cells) const {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      int w = i < widths_.size() ? widths_[i] : 0;
      std::string cell = cells[i];
      std::string pad(cell.size() < static_cast<std::size_t>(w) ? w - cell.size() : 0, ' ');
      line += i == 0 ? cell + pad : pad + cell;
    }
    std::puts(line.c_str());
  }

private:
  std::vector<int> widths_;
};

/// `text` centred in `width` columns (left-leaning when the padding is odd).
inline std::string center(const std::string& text, std::size_t width) {
  if (text.size() >= width)
    return text;
  std::size_t left = (width - text.size()) / 2;
  return std::string(left, ' ') + text + std::string(width - text.size() - left, ' ');
}

/// printf into a std::string.
template <class... Args>
std::string format(const char* fmt, Args... args) {
  int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string s(static_cast<std::size_t>(n > 0 ? n : 0), '\0');
  std::snprintf(s.data(), s.size() + 1, fmt, args...);
  return s;
}

/// "2.31x", or "-" when either side was not measured.
inline std::string ratio(double num, double den) {
  if (!(num > 0) || !(den > 0))
    return "-";
  return format("%.2fx", num / den);
}

/// One line per target: what it asks, the measured ratio, PASS or MISS (n/a if unmeasured).
inline void print_target(const std::string& what, double measured_ratio, double needed) {
  const char* verdict = !(measured_ratio > 0) ? "n/a" : measured_ratio >= needed ? "PASS" : "MISS";
  std::string value = measured_ratio > 0 ? format("%.2fx", measured_ratio) : "-";
  std::printf("  %-52s %8s  %s\n", what.c_str(), value.c_str(), verdict);
}

} // namespace sluice::bench

#endif
