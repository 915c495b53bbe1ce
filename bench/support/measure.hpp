// Timing and repetition for sluice's benchmarks. No framework: each benchmark is one plain
// executable that prints one table; the contenders of a case take turns run by run.
#ifndef SLUICE_BENCH_SUPPORT_MEASURE_HPP
#define SLUICE_BENCH_SUPPORT_MEASURE_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
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

/// Thrown by a benchmark whose own check of what was moved fails.
struct check_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check(bool ok, const std::string& what) {
  if (!ok)
    throw check_failed(what);
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

} // namespace sluice::bench

#endif
