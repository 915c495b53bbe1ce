#include "rate_limit/pipe_throughput.hpp"
#include "rate_limit/limited_pipe.hpp"
#include "support/measure.hpp"
#include "support/page_buffer.hpp"
#include "support/report.hpp"

#include <sluice/pipe.hpp>
#include <sluice/rate_limit.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace sluice::bench::ratelim_bench {
namespace {

namespace net = boost::asio;
using boost::system::error_code;

/// Moves bytes from `writer` to `reader`, one 64 KiB write and one read in flight.
template <class Writer, class Reader>
class bulk_pump {
public:
  bulk_pump(net::io_context& ctx, Writer& w, Reader& r, std::span<const std::byte> src,
            std::span<std::byte> dst)
      : ctx_(ctx), writer_(w), reader_(r), src_(src), dst_(dst) {}

  std::uint64_t run(std::uint64_t total) {
    total_ = total;
    written_ = read_ = 0;
    failure_.clear();
    ctx_.restart();
    read();
    write();
    ctx_.run();
    check(failure_.empty(), failure_);
    check(written_ == total_ && read_ == total_,
          format("moved %llu, read %llu of %llu bytes", static_cast<unsigned long long>(written_),
                 static_cast<unsigned long long>(read_), static_cast<unsigned long long>(total_)));
    return read_;
  }

private:
  void write() {
    std::size_t off = written_ % src_.size();
    std::size_t n = std::min<std::uint64_t>(src_.size() - off, total_ - written_);
    writer_.async_write_some(net::buffer(src_.data() + off, n),
                             [this](const error_code& ec, std::size_t k) {
                               if (ec || k == 0)
                                 return fail("write: " + (ec ? ec.message() : "0 bytes"));
                               written_ += k;
                               if (written_ < total_)
                                 write();
                             });
  }

  void read() {
    reader_.async_read_some(
        net::buffer(dst_.data(), dst_.size()), [this](const error_code& ec, std::size_t k) {
          if (ec || k == 0)
            return fail("read: " + (ec ? ec.message() : "0 bytes"));
          std::size_t c = src_.size();
          if (dst_[0] != src_[read_ % c] || dst_[k - 1] != src_[(read_ + k - 1) % c])
            return fail(format("wrong bytes read at %llu", static_cast<unsigned long long>(read_)));
          read_ += k;
          if (read_ < total_)
            read();
        });
  }

  void fail(std::string what) {
    if (failure_.empty())
      failure_ = std::move(what);
    ctx_.stop();
  }

  net::io_context& ctx_;
  Writer& writer_;
  Reader& reader_;
  std::span<const std::byte> src_;
  std::span<std::byte> dst_;
  std::uint64_t total_ = 0, written_ = 0, read_ = 0;
  std::string failure_;
};

enum class wrap { bare, no_limits, own, own_group };

/// One contender of (a): its own io_context, pipe pair, limits and buffers.
contender make_pipe_contender(const char* name, wrap how, const page_buffer& src,
                              std::uint64_t bytes) {
  struct state {
    net::io_context ctx{1};
    page_buffer dst{64 * 1024};
    std::optional<sluice::rate_limit_group> group;
    std::optional<std::pair<sluice::pipe, sluice::pipe>> bare;
    std::optional<limited_pipe> w, r;
    std::function<std::uint64_t(std::uint64_t)> run;
  };
  auto st = std::make_shared<state>();
  auto ends = sluice::make_pipe(st->ctx);
  if (how == wrap::bare) {
    st->bare.emplace(std::move(ends));
    auto pump = std::make_shared<bulk_pump<sluice::pipe, sluice::pipe>>(
        st->ctx, st->bare->first, st->bare->second, src.span(), st->dst.span());
    st->run = [pump](std::uint64_t n) { return pump->run(n); };
  } else {
    st->w.emplace(std::move(ends.first));
    st->r.emplace(std::move(ends.second));
    if (how == wrap::own || how == wrap::own_group) {
      st->w->set_rate_limit(loose_limits());
      st->r->set_rate_limit(loose_limits());
    }
    if (how == wrap::own_group) {
      st->group.emplace(st->ctx.get_executor(), loose_limits());
      st->w->join(*st->group);
      st->r->join(*st->group);
    }
    auto pump = std::make_shared<bulk_pump<limited_pipe, limited_pipe>>(st->ctx, *st->w, *st->r,
                                                                        src.span(), st->dst.span());
    st->run = [pump](std::uint64_t n) { return pump->run(n); };
  }
  // The pump refers to the state, and the state must end streams before the group: members
  // leave in their destructors (optional members go in reverse order: r, w, bare, group).
  return {name, [st, bytes] { return st->run(std::max<std::uint64_t>(bytes / 8, 1 << 20)); },
          [st, bytes] { return st->run(bytes); }};
}

} // namespace

void run_pipe_throughput(const options& opt) {
  std::uint64_t bytes = opt.quick ? 64ull << 20 : 1ull << 30;
  int reps = opt.quick ? 2 : 5;
  std::printf("[a] pipe throughput, 64 KiB writes, one thread, %s per run, best of %d:\n",
              format_size(bytes).c_str(), reps);
  std::fflush(stdout);
  std::fprintf(stderr, "ratelim_bench: pipe throughput...\n");
  page_buffer src = random_pattern(64 * 1024, 4321);
  std::vector<contender> cs;
  cs.push_back(make_pipe_contender("bare sluice::pipe", wrap::bare, src, bytes));
  cs.push_back(make_pipe_contender("rate_limited_stream, no limits", wrap::no_limits, src, bytes));
  cs.push_back(make_pipe_contender("own limits (never bind)", wrap::own, src, bytes));
  cs.push_back(make_pipe_contender("own + group limits (never bind)", wrap::own_group, src, bytes));
  measure_round_robin(cs, reps);

  const double gib = 1024.0 * 1024.0 * 1024.0;
  double base = cs[0].result.best();
  table t({36, 10, 12});
  t.row({"    stream at both ends", "GiB/s", "vs bare"});
  for (const auto& c : cs) {
    if (!c.failure.empty()) {
      std::printf("    %-32s FAILED: %s\n", c.name.c_str(), c.failure.c_str());
      continue;
    }
    t.row({"    " + c.name, format("%.2f", c.result.best() / gib), ratio(c.result.best(), base)});
  }
  std::printf("  targets:\n");
  for (std::size_t i : {2u, 3u}) {
    double r = base > 0 ? cs[i].result.best() / base : 0;
    print_verdict(cs[i].name + " >= 0.95x bare pipe", r > 0 ? format("%.2fx", r) : "-", r > 0,
                  r >= 0.95);
  }
  std::printf("\n");
  std::fflush(stdout);
}

} // namespace sluice::bench::ratelim_bench
