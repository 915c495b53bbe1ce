// What the benchmarks print: formatted figures, fixed-width tables and target verdicts.
#ifndef SLUICE_BENCH_SUPPORT_REPORT_HPP
#define SLUICE_BENCH_SUPPORT_REPORT_HPP

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace sluice::bench {

/// printf into a std::string.
template <class... Args>
std::string format(const char* fmt, Args... args) {
  int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string s(static_cast<std::size_t>(n > 0 ? n : 0), '\0');
  std::snprintf(s.data(), s.size() + 1, fmt, args...);
  return s;
}

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

/// One line per target, for figures other than ratios: what it asks, what was measured (as
/// text), PASS or MISS (n/a when nothing was measured).
inline void print_verdict(const std::string& what, const std::string& measured, bool measured_ok,
                          bool pass) {
  std::printf("  %-58s %12s  %s\n", what.c_str(), measured.c_str(),
              !measured_ok ? "n/a"
              : pass       ? "PASS"
                           : "MISS");
}

} // namespace sluice::bench

#endif
