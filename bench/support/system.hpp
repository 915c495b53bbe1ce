// What the benchmarks ask the system: CPU time of the process and of its threads, the load
// average, and the limit on open files.
#ifndef SLUICE_BENCH_SUPPORT_SYSTEM_HPP
#define SLUICE_BENCH_SUPPORT_SYSTEM_HPP

#include "support/report.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

namespace sluice::bench {

inline double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec * 1e-6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

inline double clock_seconds(clockid_t id) {
  timespec ts{};
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// CPU time of another (running) thread of this process.
inline double thread_cpu_seconds(pthread_t thread) {
  clockid_t id{};
  if (pthread_getcpuclockid(thread, &id) != 0)
    return 0;
  return clock_seconds(id);
}

inline double this_thread_cpu_seconds() {
  return clock_seconds(CLOCK_THREAD_CPUTIME_ID);
}

/// The 1-minute load average, to tell a busy machine when reading the figures.
inline std::string load_average() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? format("%.2f", load[0]) : std::string("?");
}

[[noreturn]] inline void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

/// Raises the soft limit on open files to the hard one, and warns (naming `program`) when
/// that is still less than `wanted`.
inline void raise_file_limit(const char* program, std::size_t wanted) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < wanted)
    std::fprintf(stderr, "%s: warning: only %llu files may be open, %zu wanted\n", program,
                 static_cast<unsigned long long>(rl.rlim_cur), wanted);
}

} // namespace sluice::bench

#endif
