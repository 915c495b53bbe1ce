// The pipe benchmark's limit: memcpy of the same chunks between the same page-aligned
// buffers, with the same check at the end.
#include "pipe/pattern.hpp"
#include "pipe/peers.hpp"
#include "support/measure.hpp"
#include "support/page_buffer.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

namespace sluice::bench::pipe_bench {

workload memcpy_workload(bench_case c, const config& cfg) {
  if (c == round_trip)
    return {};
  std::size_t chunk = chunk_of[c];
  struct state {
    state(std::size_t chunk, std::size_t offset)
        : src(make_pattern(chunk)), buffer(offset + chunk), dst(buffer.data() + offset) {}
    page_buffer src, buffer;
    std::byte* dst;
  };
  auto s = std::make_shared<state>(chunk, cfg.offset);
  return [s, chunk](std::uint64_t total) {
    std::fill_n(s->dst, chunk, std::byte{0});
    for (std::uint64_t done = 0; done < total;) {
      std::size_t n = std::min<std::uint64_t>(chunk, total - done);
      std::memcpy(s->dst, s->src.data(), n);
      keep(s->dst);
      done += n;
    }
    std::size_t last = total % chunk ? total % chunk : chunk;
    check(std::memcmp(s->dst, s->src.data(), last) == 0, "memcpy: wrong bytes");
    return total;
  };
}

} // namespace sluice::bench::pipe_bench
